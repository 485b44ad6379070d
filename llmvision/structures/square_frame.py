"""Pixel coordinates of the original image <-> normalized coordinates of the square model input.

LLaVA-style pipelines make every image an ``S x S`` square (``'pad'``: centred on a ``max(h, w)`` square;
``'resize'``: stretched). A frame ``(ox, oy, sx, sy)`` maps pixel ``x`` to ``(x + ox) / sx`` (``y`` likewise),
so targets given in pixels become normalized coordinates of what the model sees, and predictions go back.
"""
from typing import Sequence, Tuple

import torch

Frame = Tuple[float, float, float, float]


def square_frame(hw: Sequence[int], aspect: str = 'pad') -> Frame:
    """``(ox, oy, sx, sy)`` of an image of size ``hw = (h, w)`` under ``aspect`` ``'pad'`` or ``'resize'``
    (the ``'pad'`` offsets are those of :func:`llmvision.datasets.transforms.square_images.square_image`)."""
    h, w = int(hw[0]), int(hw[1])
    if aspect == 'pad':
        side = max(h, w)
        return float((side - w) // 2), float((side - h) // 2), float(side), float(side)
    if aspect == 'resize':
        return 0.0, 0.0, float(w), float(h)
    raise ValueError(f"aspect must be 'pad' or 'resize', got {aspect!r}")


def _params(frame: Frame, like: torch.Tensor, n: int):
    ox, oy, sx, sy = (float(v) for v in frame)
    off = like.new_tensor([ox, oy] * (n // 2))
    scale = like.new_tensor([sx, sy] * (n // 2))
    return off, scale


def pixels_to_frame(xy: torch.Tensor, frame: Frame) -> torch.Tensor:
    """``[..., 2k]`` pixel (x, y, x, y, ...) -> normalized coordinates of the square input."""
    off, scale = _params(frame, xy, xy.shape[-1])
    return (xy + off) / scale


def frame_to_pixels(xy: torch.Tensor, frame: Frame) -> torch.Tensor:
    """Inverse of :func:`pixels_to_frame`."""
    off, scale = _params(frame, xy, xy.shape[-1])
    return xy * scale - off
