"""Validation of one annotated box: the one rule shared by the dataset loaders
(``llmvision.datasets.annotation_checks``) and the evaluators' ground truth
(``llmvision.evaluation.ground_truth``), so a file the loader rejects is not scored either.

A box is rejected when it is not 4 finite numbers, degenerate (``x2 <= x1`` or ``y2 <= y1``, i.e.
a zero or negative width / height) or, when the image size is known, fully outside the image.
A box partly outside the image is clipped to it (the loaders train on the clipped box; the
evaluators only validate and keep the annotated box, as the reference COCO / LVIS evaluators do).
"""
import math
from typing import List, Optional


class InvalidBoxError(ValueError):
    """An annotated box that cannot be used; the message names the key and the value."""


def check_xyxy_box(box, height: Optional[float] = None, width: Optional[float] = None,
                   key: str = 'bbox') -> List[float]:
    """Validate one pixel ``[x1, y1, x2, y2]`` box (of an image ``height`` x ``width`` when given).

    Returns:
        ``[x1, y1, x2, y2]`` floats, clipped to ``[0, width] x [0, height]`` when the size is given.

    Raises:
        InvalidBoxError: not 4 finite numbers, degenerate, or fully outside the image.
    """
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise InvalidBoxError(f'{key} must be 4 numbers [x1, y1, x2, y2], got {box!r}')
    try:
        x1, y1, x2, y2 = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InvalidBoxError(f'{key} must be 4 numbers [x1, y1, x2, y2], got {box!r}') from None
    if not all(math.isfinite(v) for v in (x1, y1, x2, y2)):
        raise InvalidBoxError(f'{key} has a non-finite coordinate: {box!r}')
    if x2 <= x1 or y2 <= y1:
        raise InvalidBoxError(f'{key} is degenerate (needs x2 > x1 and y2 > y1): {box!r}')
    if height is None or width is None:
        return [x1, y1, x2, y2]
    cx1, cy1 = min(max(x1, 0.0), width), min(max(y1, 0.0), height)
    cx2, cy2 = min(max(x2, 0.0), width), min(max(y2, 0.0), height)
    if cx2 <= cx1 or cy2 <= cy1:
        raise InvalidBoxError(f'{key} {box!r} lies fully outside the image (w={width}, h={height})')
    return [cx1, cy1, cx2, cy2]


def check_xywh_box(box, height: Optional[float] = None, width: Optional[float] = None,
                   key: str = 'bbox') -> List[float]:
    """COCO ``[x, y, w, h]`` -> validated pixel xyxy (see :func:`check_xyxy_box`); a zero or
    negative ``w`` / ``h`` is degenerate."""
    if not isinstance(box, (list, tuple)) or len(box) != 4:
        raise InvalidBoxError(f'{key} must be 4 numbers [x, y, w, h], got {box!r}')
    try:
        x, y, w, h = (float(v) for v in box)
    except (TypeError, ValueError):
        raise InvalidBoxError(f'{key} must be 4 numbers [x, y, w, h], got {box!r}') from None
    if w <= 0 or h <= 0:
        raise InvalidBoxError(f'{key} is degenerate (needs w > 0 and h > 0): {box!r}')
    return check_xyxy_box([x, y, x + w, y + h], height, width, key=key)
