"""DETR-style random crop (mmdet ``RandomCrop`` with ``crop_type='absolute_range'``), boxes cropped alike."""
import random
from typing import Tuple

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

_PER_BOX_KEYS = ('gt_bboxes_labels', 'gt_ignore_flags')


@TRANSFORMS.register_module()
class RandomCrop(BaseTransform):
    """Crop a random ``h x w`` window with each side uniform in ``crop_size_range`` (capped by the image).

    Boxes ``[N, 4]`` are shifted by the window origin and clipped to it; boxes left with no area
    are dropped with their labels. With ``allow_negative_crop=False`` a crop that removes every
    box returns ``None`` (the dataset fetches another index); an image that had no box to begin
    with is cropped anyway.

    Args:
        crop_size_range: ``(lo, hi)`` pixels for both height and width.
        allow_negative_crop: keep crops without any box.
    """

    def __init__(self, crop_size_range: Tuple[int, int] = (384, 600), allow_negative_crop: bool = True):
        lo, hi = crop_size_range
        if not 0 < lo <= hi:
            raise ValueError(f'crop_size_range must be (lo, hi) with 0 < lo <= hi, got {crop_size_range}')
        self.crop_size_range = (int(lo), int(hi))
        self.allow_negative_crop = allow_negative_crop

    def transform(self, results: dict):
        img = results['img']
        h, w = img.shape[:2]
        lo, hi = self.crop_size_range
        ch = random.randint(min(h, lo), min(h, hi))
        cw = random.randint(min(w, lo), min(w, hi))
        y0 = random.randint(0, h - ch)
        x0 = random.randint(0, w - cw)
        boxes = results.get('gt_bboxes')
        if boxes is not None:
            boxes = np.asarray(boxes, np.float32).reshape(-1, 4) - np.array([x0, y0, x0, y0], np.float32)
            boxes[:, 0::2] = boxes[:, 0::2].clip(0, cw)
            boxes[:, 1::2] = boxes[:, 1::2].clip(0, ch)
            keep = (boxes[:, 2] > boxes[:, 0]) & (boxes[:, 3] > boxes[:, 1])
            if len(keep) and not keep.any() and not self.allow_negative_crop:
                return None
            results['gt_bboxes'] = boxes[keep]
            for key in _PER_BOX_KEYS:
                if key in results:
                    results[key] = results[key][keep]
        results['img'] = img[y0:y0 + ch, x0:x0 + cw]
        results['img_shape'] = (ch, cw)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(crop_size_range={self.crop_size_range}, '
                f'allow_negative_crop={self.allow_negative_crop})')
