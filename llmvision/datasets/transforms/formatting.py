"""Pack a pipeline's results into ``{'inputs', 'data_samples'}`` for collate and the data preprocessor."""
import numpy as np
import torch
from mmcv.transforms import BaseTransform
from mmengine.structures import InstanceData

from ...registry import TRANSFORMS
from ...structures import DetDataSample

DEFAULT_META_KEYS = ('img_id', 'img_path', 'ori_shape', 'img_shape', 'scale_factor', 'flip', 'flip_direction',
                     'text', 'custom_entities', 'tokens_positive', 'long_caption', 'phrases',
                     'neg_category_ids', 'not_exhaustive_category_ids', 'ref_id', 'ann_id', 'sent_id',
                     'ori_gt_bboxes', 'split', 'sample_idx', 'dataset_name', 'tags', 'rec_heuristic')


@TRANSFORMS.register_module()
class PackDetInputs(BaseTransform):
    """results -> ``dict(inputs=uint8 [3, H, W] (BGR), data_samples=DetDataSample)``.

    ``gt_instances`` gets ``bboxes`` float32 ``[N, 4]`` pixel xyxy (in ``img_shape``) and ``labels``
    int64 ``[N]`` of the boxes with ``gt_ignore_flags == False``; flagged boxes go to
    ``ignored_instances``. Every key of ``meta_keys`` present in results goes to the metainfo.
    """

    def __init__(self, meta_keys=DEFAULT_META_KEYS):
        self.meta_keys = tuple(meta_keys)

    def transform(self, results: dict) -> dict:
        img = results['img']
        if img.ndim == 2:
            img = img[..., None]
        inputs = torch.from_numpy(np.ascontiguousarray(img.transpose(2, 0, 1)))
        sample = DetDataSample()
        if 'gt_bboxes' in results:
            boxes = torch.as_tensor(np.asarray(results['gt_bboxes'], dtype=np.float32)).reshape(-1, 4)
            labels = torch.as_tensor(np.asarray(results.get('gt_bboxes_labels', np.zeros(len(boxes))),
                                                dtype=np.int64)).reshape(-1)
            ignore = torch.as_tensor(np.asarray(results.get('gt_ignore_flags', np.zeros(len(boxes), bool)),
                                                dtype=bool)).reshape(-1)
            sample.gt_instances = InstanceData(bboxes=boxes[~ignore], labels=labels[~ignore])
            sample.ignored_instances = InstanceData(bboxes=boxes[ignore], labels=labels[ignore])
        else:
            sample.gt_instances = InstanceData()
        sample.set_metainfo({k: results[k] for k in self.meta_keys if k in results})
        return dict(inputs=inputs, data_samples=sample)

    def __repr__(self):
        return f'{type(self).__name__}(meta_keys={self.meta_keys})'
