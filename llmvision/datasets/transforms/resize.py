"""Keep-ratio resizing by the short side with a cap on the long side; boxes scaled alike.

New size (mmcv ``rescale_size`` rule): ``s = min(short / min(h, w), max_long / max(h, w))``,
``new = int(side * s + 0.5)``. Boxes are scaled by the realised ``(new_w / w, new_h / h)`` and
clipped to the new image. ``scale_factor`` is ``(w, h)`` relative to ``ori_shape``, so predictions
map back to the original image by dividing by it.
"""
import random
from typing import Optional, Sequence, Tuple

import mmcv
import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS


def keep_ratio_size(hw: Tuple[int, int], short_side: float, max_long_side: Optional[float]) -> Tuple[int, int]:
    """``(H, W)`` -> resized ``(H', W')`` with short side ``short_side`` and long side <= ``max_long_side``."""
    h, w = hw
    scale = short_side / min(h, w)
    if max_long_side is not None:
        scale = min(scale, max_long_side / max(h, w))
    return max(1, int(h * scale + 0.5)), max(1, int(w * scale + 0.5))


def resize_results(results: dict, short_side: int, max_long_side: Optional[int],
                   interpolation: str = 'bilinear', backend: str = 'cv2') -> dict:
    """Resize ``results['img']`` and its ``gt_bboxes`` in place (see module docstring)."""
    img = results['img']
    h, w = img.shape[:2]
    new_h, new_w = keep_ratio_size((h, w), short_side, max_long_side)
    if (new_h, new_w) != (h, w):
        img = mmcv.imresize(img, (new_w, new_h), interpolation=interpolation, backend=backend)
    results['img'] = img
    results['img_shape'] = (new_h, new_w)
    ori_h, ori_w = results.get('ori_shape', (h, w))
    results['scale_factor'] = (new_w / ori_w, new_h / ori_h)
    boxes = results.get('gt_bboxes')
    if boxes is not None and len(boxes):
        boxes = boxes * np.array([new_w / w, new_h / h, new_w / w, new_h / h], dtype=np.float32)
        boxes[:, 0::2] = boxes[:, 0::2].clip(0, new_w)
        boxes[:, 1::2] = boxes[:, 1::2].clip(0, new_h)
        results['gt_bboxes'] = boxes.astype(np.float32)
    return results


@TRANSFORMS.register_module()
class ResizeShortSide(BaseTransform):
    """Resize ``img`` so its short side is ``short_side`` (long side <= ``max_long_side``).

    Updates ``img`` ``[H', W', 3]``, ``img_shape``, ``scale_factor`` ``(w, h)`` and ``gt_bboxes`` ``[N, 4]``.

    Args:
        short_side: target short side in pixels.
        max_long_side: cap on the long side (``None``: no cap).
        interpolation: mmcv interpolation name.
        backend: ``'cv2'`` or ``'pillow'`` (mmdet's Grounding-DINO test pipeline uses pillow).
    """

    def __init__(self, short_side: int = 800, max_long_side: Optional[int] = 1333,
                 interpolation: str = 'bilinear', backend: str = 'cv2'):
        self.short_side = short_side
        self.max_long_side = max_long_side
        self.interpolation = interpolation
        self.backend = backend

    def _short_side(self) -> int:
        return self.short_side

    def transform(self, results: dict) -> dict:
        return resize_results(results, self._short_side(), self.max_long_side,
                              self.interpolation, self.backend)

    def __repr__(self):
        return f'{type(self).__name__}(short_side={self.short_side}, max_long_side={self.max_long_side})'


@TRANSFORMS.register_module()
class RandomChoiceResize(ResizeShortSide):
    """Multi-scale training resize: short side drawn per image.

    Args:
        scales: candidate short sides; an int, or an ``(a, b)`` pair read as mmdet's
            ``(short, long)`` scale: short side ``min(a, b)`` (the long cap stays ``max_long_side``).
        short_side_range: ``(lo, hi)``: short side uniform in ``[lo, hi]`` instead of ``scales``.
        max_long_side, interpolation, backend: see :class:`ResizeShortSide`.
    """

    def __init__(self, scales: Optional[Sequence] = None, short_side_range: Optional[Tuple[int, int]] = None,
                 max_long_side: Optional[int] = 1333, interpolation: str = 'bilinear', backend: str = 'cv2'):
        if (scales is None) == (short_side_range is None):
            raise ValueError('give exactly one of scales (a list) or short_side_range (lo, hi)')
        if scales is not None:
            scales = [min(s) if isinstance(s, (list, tuple)) else s for s in scales]
            if not scales:
                raise ValueError('scales is empty')
        elif not (len(short_side_range) == 2 and 0 < short_side_range[0] <= short_side_range[1]):
            raise ValueError(f'short_side_range must be (lo, hi) with 0 < lo <= hi, got {short_side_range}')
        super().__init__(short_side=None, max_long_side=max_long_side,
                         interpolation=interpolation, backend=backend)
        self.scales = list(scales) if scales is not None else None
        self.short_side_range = tuple(short_side_range) if short_side_range is not None else None

    def _short_side(self) -> int:
        if self.scales is not None:
            return random.choice(self.scales)
        return random.randint(*self.short_side_range)

    def __repr__(self):
        return (f'{type(self).__name__}(scales={self.scales}, short_side_range={self.short_side_range}, '
                f'max_long_side={self.max_long_side})')


@TRANSFORMS.register_module()
class FixScaleResize(ResizeShortSide):
    """Test-time resize with mmdet's ``scale=(800, 1333)`` form: short ``min(scale)``, long <= ``max(scale)``."""

    def __init__(self, scale: Tuple[int, int] = (800, 1333), interpolation: str = 'bilinear',
                 backend: str = 'cv2'):
        super().__init__(short_side=min(scale), max_long_side=max(scale),
                         interpolation=interpolation, backend=backend)
        self.scale = tuple(scale)
