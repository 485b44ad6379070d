"""Load a conversation's images and make each a fixed ``S x S`` square (LLaVA's ``pad`` / ``resize`` aspect).

``LoadSquareImages`` reads ``results['img_paths']`` (a list; empty for a text-only sample) and sets
``results['imgs']``: uint8 ``[N, 3, S, S]`` RGB (``N = 0`` -> shape ``[0, 3, S, S]``).

* ``aspect='pad'``: pad the short side to a centred square with ``pad_value`` (LLaVA-1.5 ``expand2square``
  with the CLIP mean colour), then resize to ``S``.
* ``aspect='resize'``: resize straight to ``S x S`` (aspect not kept).

``replace_with='noise'`` (uniform uint8 noise, seeded by the sample id) or ``'blank'`` (``pad_value``) swaps
every image after loading: the "does the image matter" ablation. A missing or unreadable image raises
:class:`~llmvision.datasets.bad_samples.BadSampleError` naming the file.
"""
import os.path as osp
import zlib
from typing import Optional, Sequence

import numpy as np
import torch
from mmcv.transforms import BaseTransform
from PIL import Image

from ...registry import TRANSFORMS
from ..bad_samples import BadSampleError

CLIP_MEAN_RGB = (122, 116, 104)  # round(255 * (0.48145466, 0.4578275, 0.40821073))


def square_image(img: Image.Image, size: int, aspect: str = 'pad',
                 pad_value: Sequence[int] = CLIP_MEAN_RGB) -> np.ndarray:
    """``img`` (PIL RGB) -> uint8 ``[size, size, 3]`` by ``aspect`` ``'pad'`` or ``'resize'``."""
    if aspect == 'pad':
        w, h = img.size
        if w != h:
            side = max(w, h)
            canvas = Image.new('RGB', (side, side), tuple(int(v) for v in pad_value))
            canvas.paste(img, ((side - w) // 2, (side - h) // 2))
            img = canvas
    elif aspect != 'resize':
        raise ValueError(f"image aspect must be 'pad' or 'resize', got {aspect!r}")
    if img.size != (size, size):
        img = img.resize((size, size), Image.BICUBIC)
    return np.asarray(img, dtype=np.uint8)


def square_boxes(boxes, width: int, height: int, size: int, aspect: str = 'pad') -> np.ndarray:
    """xyxy pixel boxes ``[K, 4]`` of a ``width x height`` image -> float32 ``[K, 4]`` on the ``size x size``
    square that :func:`square_image` makes of it (``'pad'``: shift by the centring offset, then scale by
    ``size / max(width, height)``; ``'resize'``: scale x and y separately)."""
    out = np.asarray(boxes, dtype=np.float32).reshape(-1, 4).copy()
    if aspect == 'pad':
        side = max(width, height)
        out[:, 0::2] += (side - width) // 2
        out[:, 1::2] += (side - height) // 2
        out *= size / side
    elif aspect == 'resize':
        out[:, 0::2] *= size / width
        out[:, 1::2] *= size / height
    else:
        raise ValueError(f"image aspect must be 'pad' or 'resize', got {aspect!r}")
    return out


@TRANSFORMS.register_module()
class LoadSquareImages(BaseTransform):
    """Read ``img_paths`` into ``imgs`` uint8 ``[N, 3, size, size]`` (see the module docstring).

    Args:
        size: output side ``S``.
        aspect: ``'pad'`` or ``'resize'``.
        pad_value: RGB fill of the padding (and of ``replace_with='blank'``).
        replace_with: ``None``, ``'noise'`` or ``'blank'``.
    """

    def __init__(self, size: int = 336, aspect: str = 'pad', pad_value: Sequence[int] = CLIP_MEAN_RGB,
                 replace_with: Optional[str] = None):
        if aspect not in ('pad', 'resize'):
            raise ValueError(f"image aspect must be 'pad' or 'resize', got {aspect!r}")
        if replace_with not in (None, 'noise', 'blank'):
            raise ValueError(f"replace_with must be None, 'noise' or 'blank', got {replace_with!r}")
        self.size = int(size)
        self.aspect = aspect
        self.pad_value = tuple(int(v) for v in pad_value)
        self.replace_with = replace_with

    def _load(self, path: str) -> Image.Image:
        if not osp.isfile(path):
            raise BadSampleError('image file not found', source=path)
        try:
            with Image.open(path) as im:
                return im.convert('RGB')
        except Exception as e:  # noqa: BLE001  (any decoder failure = corrupt file)
            raise BadSampleError(f'cannot read image: {type(e).__name__}: {e}', source=path) from None

    def transform(self, results: dict) -> dict:
        s = self.size
        arrays = [square_image(self._load(p), s, self.aspect, self.pad_value) for p in results['img_paths']]
        if self.replace_with == 'noise':
            rng = np.random.default_rng(zlib.crc32(str(results.get('sample_id', '')).encode()))
            arrays = [rng.integers(0, 256, (s, s, 3), dtype=np.uint8) for _ in arrays]
        elif self.replace_with == 'blank':
            arrays = [np.broadcast_to(np.asarray(self.pad_value, np.uint8), (s, s, 3)) for _ in arrays]
        if arrays:
            results['imgs'] = torch.from_numpy(np.stack(arrays)).permute(0, 3, 1, 2).contiguous()
        else:
            results['imgs'] = torch.zeros((0, 3, s, s), dtype=torch.uint8)
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(size={self.size}, aspect={self.aspect!r}, '
                f'replace_with={self.replace_with!r})')
