"""Per-image data container passed between datasets, models and metrics.

``DetDataSample`` mirrors mmdet's: a :class:`mmengine.structures.BaseDataElement` whose
metainfo holds image facts and text, with three ``InstanceData`` fields.

Metainfo keys used across llmvision (set by datasets/transforms):
  img_id, img_path, ori_shape (H, W), img_shape (H, W) after resize, scale_factor (w, h),
  flip, batch_input_shape / pad_shape (set by the data preprocessor),
  text: a caption ``str`` or a list of category names,
  custom_entities: ``True`` when ``text`` is a list of names (detection prompt),
  tokens_positive: per label, a list of ``[start, end)`` character spans in the caption
  (grounding), or ``None`` for category prompts (spans are derived from the names).

Instance fields:
  gt_instances.bboxes ``[N, 4]`` float pixel xyxy (in ``img_shape``), gt_instances.labels ``[N]`` long
  pred_instances.bboxes ``[K, 4]`` pixel xyxy in ``ori_shape``, .scores ``[K]``, .labels ``[K]``
"""
from mmengine.structures import BaseDataElement, InstanceData


class DetDataSample(BaseDataElement):
    """Data sample with ``gt_instances``, ``pred_instances`` and ``ignored_instances``."""

    @property
    def gt_instances(self) -> InstanceData:
        return self._gt_instances

    @gt_instances.setter
    def gt_instances(self, value: InstanceData):
        self.set_field(value, '_gt_instances', dtype=InstanceData)

    @gt_instances.deleter
    def gt_instances(self):
        del self._gt_instances

    @property
    def pred_instances(self) -> InstanceData:
        return self._pred_instances

    @pred_instances.setter
    def pred_instances(self, value: InstanceData):
        self.set_field(value, '_pred_instances', dtype=InstanceData)

    @pred_instances.deleter
    def pred_instances(self):
        del self._pred_instances

    @property
    def ignored_instances(self) -> InstanceData:
        return self._ignored_instances

    @ignored_instances.setter
    def ignored_instances(self, value: InstanceData):
        self.set_field(value, '_ignored_instances', dtype=InstanceData)

    @ignored_instances.deleter
    def ignored_instances(self):
        del self._ignored_instances
