"""Clip boxes to the image and drop the ones that became too small after augmentation."""
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

_PER_BOX_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags')


@TRANSFORMS.register_module()
class FilterEmptyBoxes(BaseTransform):
    """Clip ``gt_bboxes`` ``[N, 4]`` to ``img_shape`` and drop boxes narrower/shorter than ``min_size``.

    Labels and ignore flags are dropped alongside. With ``keep_empty=False`` an image left with
    no box returns ``None`` (mmengine's dataset then fetches another index in training).

    Args:
        min_size: smallest width and height kept, in pixels.
        clip: clip to the image before measuring.
        keep_empty: keep images whose boxes were all dropped.
    """

    def __init__(self, min_size: float = 1.0, clip: bool = True, keep_empty: bool = True):
        self.min_size = min_size
        self.clip = clip
        self.keep_empty = keep_empty

    def transform(self, results: dict):
        boxes = results.get('gt_bboxes')
        if boxes is None:
            return results
        boxes = np.asarray(boxes, dtype=np.float32).reshape(-1, 4)
        if self.clip:
            h, w = results['img_shape'][:2]
            boxes = boxes.copy()
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, w)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, h)
        keep = ((boxes[:, 2] - boxes[:, 0]) >= self.min_size) & ((boxes[:, 3] - boxes[:, 1]) >= self.min_size)
        results['gt_bboxes'] = boxes
        for key in _PER_BOX_KEYS:
            if key in results:
                results[key] = results[key][keep]
        if not self.keep_empty and not keep.any():
            return None
        return results

    def __repr__(self):
        return f'{type(self).__name__}(min_size={self.min_size}, clip={self.clip}, keep_empty={self.keep_empty})'
