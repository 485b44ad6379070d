"""Backgrounds for synthetic images: plain, gradient, noise and crops of bundled photos.

Photos come from the image files shipped inside the scikit-image wheel (read directly with
PIL: no ``skimage.data`` fetcher, so never a pooch download). They are softened (blended
towards mid-gray) so saturated shapes stay clearly visible on top of them.
"""
import functools
import os
from dataclasses import dataclass
from typing import Tuple

import numpy as np
from PIL import Image

from .vocabulary import PHOTOS, PLAIN_COLOURS

KINDS = ('plain', 'gradient', 'noise', 'photo')


@dataclass(frozen=True)
class Background:
    """A rendered background ``image`` ``[H, W, 3]`` uint8 and the phrase that truly describes it."""
    kind: str
    phrase: str
    image: np.ndarray


def _skimage_data_dir() -> str:
    import skimage.data
    return os.path.dirname(skimage.data.__file__)


@functools.lru_cache(maxsize=None)
def available_photos() -> Tuple[Tuple[str, str], ...]:
    """The :data:`.vocabulary.PHOTOS` entries whose file is present in the installed scikit-image."""
    root = _skimage_data_dir()
    return tuple(p for p in PHOTOS if os.path.isfile(os.path.join(root, p[0])))


@functools.lru_cache(maxsize=None)
def _load_photo(name: str) -> np.ndarray:
    with Image.open(os.path.join(_skimage_data_dir(), name)) as im:
        arr = np.asarray(im.convert('RGB'), dtype=np.uint8).copy()
    arr.setflags(write=False)
    return arr


def _plain(rng, size):
    name, rgb = PLAIN_COLOURS[rng.integers(len(PLAIN_COLOURS))]
    img = np.empty((*size, 3), np.uint8)
    img[:] = rgb
    return Background('plain', f'plain {name} background', img)


def _gradient(rng, size):
    i, j = rng.choice(len(PLAIN_COLOURS), size=2, replace=False)
    (n1, c1), (n2, c2) = PLAIN_COLOURS[i], PLAIN_COLOURS[j]
    h, w = size
    ang = rng.uniform(0, 2 * np.pi)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    proj = xx * np.cos(ang) + yy * np.sin(ang)
    t = (proj - proj.min()) / max(proj.max() - proj.min(), 1e-6)
    img = (1 - t)[..., None] * np.array(c1, np.float64) + t[..., None] * np.array(c2, np.float64)
    return Background('gradient', f'gradient background from {n1} to {n2}', np.rint(img).astype(np.uint8))


def _noise(rng, size):
    name, rgb = PLAIN_COLOURS[rng.integers(len(PLAIN_COLOURS))]
    h, w = size
    cell = int(rng.choice([1, 4, 8]))
    coarse = rng.normal(0, 18, size=(-(-h // cell), -(-w // cell), 3))
    noise = np.repeat(np.repeat(coarse, cell, axis=0), cell, axis=1)[:h, :w]
    img = np.clip(np.array(rgb, np.float64) + noise, 0, 255)
    return Background('noise', f'noisy {name} background', np.rint(img).astype(np.uint8))


def _photo(rng, size):
    photos = available_photos()
    if not photos:
        return _noise(rng, size)
    fname, what = photos[rng.integers(len(photos))]
    src = _load_photo(fname)
    h, w = size
    sh, sw = src.shape[:2]
    # A crop with the target aspect ratio covering 50-100% of the photo's limiting side.
    scale = rng.uniform(0.5, 1.0)
    ch = int(min(sh, sw * h / w) * scale)
    cw = int(round(ch * w / h))
    ch, cw = max(ch, 8), max(min(cw, sw), 8)
    y0 = int(rng.integers(0, sh - ch + 1))
    x0 = int(rng.integers(0, sw - cw + 1))
    crop = Image.fromarray(src[y0:y0 + ch, x0:x0 + cw]).resize((w, h), Image.BILINEAR)
    arr = np.asarray(crop, np.float64)
    arr = 0.55 * arr + 0.45 * 128.0  # soften so the shapes stand out
    return Background('photo', f'background showing part of a photo of {what}', np.rint(arr).astype(np.uint8))


_MAKERS = {'plain': _plain, 'gradient': _gradient, 'noise': _noise, 'photo': _photo}


def make_background(rng: np.random.Generator, size: Tuple[int, int], kind: str = None) -> Background:
    """Sample a background of ``size`` ``(H, W)``; ``kind`` in :data:`KINDS` or ``None`` for a random one."""
    if kind is None:
        kind = KINDS[rng.integers(len(KINDS))]
    if kind not in _MAKERS:
        raise ValueError(f'unknown background kind {kind!r}; expected one of {KINDS}')
    return _MAKERS[kind](rng, size)
