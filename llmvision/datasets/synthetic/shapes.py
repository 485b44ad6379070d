"""Rasterise one shape into a boolean mask and read its tight pixel box.

Shapes are drawn without anti-aliasing (PIL ``ImageDraw`` on a 1-bit canvas), so every pixel
is either fully the object's colour or untouched background: boxes taken from the mask are
exactly tight to what ends up in the image.
"""
import math
from typing import Tuple

import numpy as np
from PIL import Image, ImageDraw

from .vocabulary import SHAPES


def _star_points(cx: float, cy: float, r_out: float, r_in: float):
    pts = []
    for k in range(10):
        ang = -math.pi / 2 + k * math.pi / 5
        r = r_out if k % 2 == 0 else r_in
        pts.append((cx + r * math.cos(ang), cy + r * math.sin(ang)))
    return pts


def shape_mask(shape: str, image_size: Tuple[int, int], x0: int, y0: int, extent: int) -> np.ndarray:
    """Mask ``[H, W]`` bool of ``shape`` drawn inside the square ``[x0, x0+extent) x [y0, y0+extent)``.

    Args:
        shape: one of :data:`.vocabulary.SHAPES`.
        image_size: ``(H, W)`` of the canvas.
        x0, y0: top-left pixel of the shape's square cell.
        extent: side of the cell in pixels (the shape spans it along at least one axis).
    """
    if shape not in SHAPES:
        raise ValueError(f'unknown shape {shape!r}; expected one of {SHAPES}')
    h, w = image_size
    canvas = Image.new('1', (w, h), 0)
    draw = ImageDraw.Draw(canvas)
    x1, y1 = x0 + extent - 1, y0 + extent - 1
    if shape == 'circle':
        draw.ellipse([x0, y0, x1, y1], fill=1)
    elif shape == 'square':
        draw.rectangle([x0, y0, x1, y1], fill=1)
    elif shape == 'triangle':
        draw.polygon([(x0 + (extent - 1) / 2, y0), (x1, y1), (x0, y1)], fill=1)
    else:  # star
        c = (extent - 1) / 2
        draw.polygon(_star_points(x0 + c, y0 + c * 1.1, c, c * 0.45), fill=1)
    return np.array(canvas, dtype=bool)


def mask_box(mask: np.ndarray) -> Tuple[int, int, int, int]:
    """Tight pixel box ``(x1, y1, x2, y2)`` of a non-empty ``[H, W]`` mask; x2/y2 exclusive (pixel edges)."""
    ys = np.flatnonzero(mask.any(axis=1))
    xs = np.flatnonzero(mask.any(axis=0))
    if ys.size == 0:
        raise ValueError('mask_box: empty mask')
    return int(xs[0]), int(ys[0]), int(xs[-1]) + 1, int(ys[-1]) + 1
