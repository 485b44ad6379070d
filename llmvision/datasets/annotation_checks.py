"""Validation of one annotation's boxes and character spans, shared by every dataset.

Each check returns the cleaned value or raises :class:`BadSampleError` naming the key at fault;
the caller adds the file and line (it re-raises with ``source``/``line``).
"""
import math
from typing import List, Sequence

from .bad_samples import BadSampleError


def check_xyxy_box(box, height: float, width: float, key: str = 'bbox') -> List[float]:
    """Validate one pixel xyxy box in an image of ``height`` x ``width``.

    A box partly outside the image is clipped to it; a box that is degenerate (``x2 <= x1`` or
    ``y2 <= y1``), not 4 finite numbers, or fully outside the image raises.

    Returns:
        ``[x1, y1, x2, y2]`` floats, clipped to ``[0, width] x [0, height]``.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise BadSampleError(f'{key} must be 4 numbers [x1, y1, x2, y2], got {box!r}')
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise BadSampleError(f'{key} must be 4 numbers [x1, y1, x2, y2], got {box!r}') from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise BadSampleError(f'{key} has a non-finite coordinate: {box!r}')
    if x2 <= x1 or y2 <= y1:
        raise BadSampleError(f'{key} is degenerate (needs x2 > x1 and y2 > y1): {box!r}')
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if cx2 <= cx1 or cy2 <= cy1:
        raise BadSampleError(f'{key} {box!r} lies fully outside the image (w={width}, h={height})')
    return [cx1, cy1, cx2, cy2]


def check_xywh_box(box, height: float, width: float, key: str = 'bbox') -> List[float]:
    """COCO ``[x, y, w, h]`` -> validated, clipped pixel xyxy (see :func:`check_xyxy_box`)."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise BadSampleError(f'{key} must be 4 numbers [x, y, w, h], got {box!r}')
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise BadSampleError(f'{key} must be 4 numbers [x, y, w, h], got {box!r}') from None
    return check_xyxy_box([x, y, x + w, y + h], height, width, key=key)


def check_spans(spans, text: str, key: str = 'tokens_positive') -> List[List[int]]:
    """Validate ``[[start, end), ...]`` character spans into ``text``.

    Raises when the list is empty, a span is not two integers, ``start >= end``, or a span
    reaches outside ``text``.
    """
    if not isinstance(spans, (list, tuple)) or len(spans) == 0:
        raise BadSampleError(f'{key} must be a non-empty list of [start, end] spans, got {spans!r}')
    out = []
    for span in spans:
        if (not isinstance(span, (list, tuple)) or len(span) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)):
            raise BadSampleError(f'{key} span must be two integers [start, end], got {span!r}')
        start, end = span
        if not 0 <= start < end <= len(text):
            raise BadSampleError(
                f'{key} span {list(span)} lies outside the caption of length {len(text)}: {text!r}')
        out.append([start, end])
    return out


def check_text(text, key: str = 'caption') -> str:
    """A caption must be a non-blank string."""
    if not isinstance(text, str) or not text.strip():
        raise BadSampleError(f'{key} is empty or not a string: {text!r}')
    return text


def check_image_size(info: dict, keys: Sequence[str] = ('height', 'width')) -> List[int]:
    """Read positive integer ``height``/``width`` from an annotation dict."""
    out = []
    for k in keys:
        v = info.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise BadSampleError(f'key {k!r} must be a positive number, got {v!r}')
        out.append(int(v))
    return out
