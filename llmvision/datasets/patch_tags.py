"""ODVG detection jsonl as square images with their boxes: the data of the vision-tower tag pre-training.

Each line ``{"filename", "height", "width", "detection": {"instances": [{"bbox", "label", "category"}]}}``
(parsed and checked by :class:`ODVGDataset`, with its bad-line policy) becomes one sample: the image made
``S x S`` exactly as the multimodal LLM's :class:`LLaVAJsonDataset` makes it (:class:`LoadSquareImages`,
``pad`` / ``resize``), its boxes mapped onto that square, labels = positions in the label map. Used by
:class:`llmvision.models.lmm.patch_tagger.PatchTagPretrainer` (the tiny LLaVA's stand-in for a pretrained
CLIP tower).
"""
from typing import Optional, Sequence

from ..registry import DATASETS
from .odvg import ODVGDataset
from .transforms.pack_patch_tags import PackPatchTagInputs
from .transforms.square_images import CLIP_MEAN_RGB, LoadSquareImages


@DATASETS.register_module()
class PatchTagDataset(ODVGDataset):
    """Square images + boxes + labels from an ODVG detection jsonl (see the module docstring).

    Args:
        ann_file: the detection jsonl.
        label_map_file: json ``{"0": "red circle", ...}`` (required: detection form).
        image_size: the square side ``S`` (the vision tower's input size).
        image_aspect: ``'pad'`` (LLaVA-1.5) or ``'resize'``.
        pad_value: RGB fill of the padding.
        pipeline: overrides the default ``[LoadSquareImages, PackPatchTagInputs]``.
        **kwargs: :class:`ODVGDataset` / mmengine ``BaseDataset`` arguments (data_root, data_prefix, ...).
    """

    def __init__(self, ann_file: str, label_map_file: Optional[str] = None, image_size: int = 336,
                 image_aspect: str = 'pad', pad_value: Sequence[int] = CLIP_MEAN_RGB, pipeline=None, **kwargs):
        if not label_map_file:
            raise ValueError('PatchTagDataset needs label_map_file (the detection form of the ODVG jsonl)')
        if pipeline is None:
            pipeline = [LoadSquareImages(image_size, image_aspect, pad_value), PackPatchTagInputs(image_aspect)]
        super().__init__(ann_file=ann_file, label_map_file=label_map_file, pipeline=pipeline, **kwargs)

    def parse_record(self, record: dict, line_no: int) -> dict:
        info = super().parse_record(record, line_no)
        info['img_paths'] = [info['img_path']]
        info['sample_id'] = f'{self.ann_file}:{line_no}'
        return info
