"""REF-VLM conversations: LLaVA json records with one target per ``<REF>`` of the answers.

Record = a :class:`LLaVAJsonDataset` record plus ``"height"``, ``"width"`` (original image size) and
``"ref_targets"``: ``[{"box": [x1, y1, x2, y2], "keypoints": [[x, y, v], ...]?}, ...]`` in pixels, one per
``<REF>`` of the assistant turns in order. Optional evaluation keys: ``gt_bbox`` + ``split`` (REC),
``eval_image_id`` + ``category`` (detection / keypoint COCO evaluation).

Each sample's ``LMMDataSample`` gains ``ref_boxes`` ``[n, 4]`` (normalized cxcywh of the square model input)
and, when any target has keypoints, ``ref_keypoints`` ``[n, K, 3]`` (normalized x, y and COCO ``v``; targets
without keypoints get ``v = 0``), and metainfo ``ori_shape`` ``(h, w)``, ``square_frame`` ``(ox, oy, sx, sy)``
(:mod:`llmvision.structures.square_frame`), ``gt_bbox``, ``split``, ``img_id``, ``category``, ``sample_idx``.
The count of targets is checked against the ``<REF>`` count of the answers when the record is read.
"""
from typing import Optional, Sequence

import torch

from ..registry import DATASETS, TRANSFORMS
from ..structures.boxes import xyxy_to_cxcywh
from ..structures.square_frame import pixels_to_frame, square_frame
from .bad_samples import BadSampleError
from .llava_json import LLaVAJsonDataset
from .transforms.pack_lmm import PackLMMInputs
from .transforms.square_images import CLIP_MEAN_RGB, LoadSquareImages

REF_TOKEN = '<REF>'  # the REF-VLM target token (the model adds it to the tokenizer)
EVAL_KEYS = ('gt_bbox', 'split', 'category')


@TRANSFORMS.register_module()
class PackRefVLMInputs(PackLMMInputs):
    """:class:`PackLMMInputs` plus the REF-VLM targets and metainfo (see the module docstring)."""

    def __init__(self, aspect: str = 'pad'):
        self.aspect = aspect

    def transform(self, results: dict) -> dict:
        packed = super().transform(results)
        sample = packed['data_samples']
        hw = (int(results['height']), int(results['width']))
        frame = square_frame(hw, self.aspect)
        targets = results['ref_targets']
        boxes = torch.tensor([t['box'] for t in targets], dtype=torch.float32).reshape(-1, 4)
        sample.ref_boxes = xyxy_to_cxcywh(pixels_to_frame(boxes, frame))
        k = max((len(t.get('keypoints') or []) for t in targets), default=0)
        if k:
            kps = torch.zeros(len(targets), k, 3)
            for i, t in enumerate(targets):
                if t.get('keypoints'):
                    kp = torch.tensor(t['keypoints'], dtype=torch.float32)
                    kps[i, :len(kp), :2] = pixels_to_frame(kp[:, :2].reshape(-1), frame).reshape(-1, 2)
                    kps[i, :len(kp), 2] = kp[:, 2]
            sample.ref_keypoints = kps
        meta = dict(ori_shape=hw, square_frame=frame, sample_idx=results.get('sample_idx'),
                    img_id=results.get('eval_image_id'))
        meta.update({k: results.get(k) for k in EVAL_KEYS})
        sample.set_metainfo(meta)
        return packed


@DATASETS.register_module()
class RefVLMJsonDataset(LLaVAJsonDataset):
    """LLaVA json + per-``<REF>`` targets (module docstring). Arguments as :class:`LLaVAJsonDataset`;
    ``pipeline=None`` gives ``[LoadSquareImages, PackRefVLMInputs]`` with the same ``image_aspect``."""

    METAINFO = dict(dataset_name='ref_vlm_json')

    def __init__(self, ann_file: str, encoder, image_size: int = 336, image_aspect: str = 'pad',
                 pad_value: Sequence[int] = CLIP_MEAN_RGB, image_ablation: Optional[str] = None, pipeline=None,
                 **kwargs):
        if pipeline is None:
            pipeline = [LoadSquareImages(image_size, image_aspect, pad_value, replace_with=image_ablation),
                        PackRefVLMInputs(image_aspect)]
        super().__init__(ann_file, encoder, image_size=image_size, image_aspect=image_aspect, pad_value=pad_value,
                         image_ablation=image_ablation, pipeline=pipeline, **kwargs)

    def _check_record(self, rec, idx: int) -> dict:
        info = super()._check_record(rec, idx)
        where = f'record {idx} (id {info["sample_id"]!r})'
        targets = rec.get('ref_targets')
        n_refs = sum(t.get('value', t.get('content', '')).count(REF_TOKEN) for t in rec['conversations']
                     if t.get('from', t.get('role')) in ('gpt', 'assistant'))
        try:
            if not isinstance(targets, list) or len(targets) != n_refs:
                raise ValueError(f'"ref_targets" must list one target per {REF_TOKEN} of the answers ({n_refs}), '
                                 f'got {targets if not isinstance(targets, list) else len(targets)}')
            for t in targets:
                if not isinstance(t, dict) or len(t.get('box') or []) != 4:
                    raise ValueError(f'a ref target needs "box": [x1, y1, x2, y2], got {t!r}')
            if not (isinstance(rec.get('height'), int) and isinstance(rec.get('width'), int)):
                raise ValueError('"height" and "width" (original image size, int) are required')
        except ValueError as e:
            raise BadSampleError(f'{where}: {e}', source=self.ann_file) from None
        info.update(ref_targets=targets, height=rec['height'], width=rec['width'],
                    eval_image_id=rec.get('eval_image_id'), sample_idx=idx)
        info.update({k: rec.get(k) for k in EVAL_KEYS})
        return info
