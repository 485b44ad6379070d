"""Validation of one annotation's boxes and character spans, shared by every dataset.

Each check returns the cleaned value or raises :class:`BadSampleError` naming the key at fault;
the caller adds the file and line (it re-raises with ``source``/``line``). The box rule itself is
:mod:`llmvision.structures.box_checks`, which the evaluators' ground truth uses too.
"""
from typing import List, Sequence

from llmvision.structures import box_checks

from .bad_samples import BadSampleError


def check_xyxy_box(box, height: float, width: float, key: str = 'bbox') -> List[float]:
    """Validate one pixel xyxy box in an image of ``height`` x ``width``.

    A box partly outside the image is clipped to it; a box that is degenerate (``x2 <= x1`` or
    ``y2 <= y1``), not 4 finite numbers, or fully outside the image raises.

    Returns:
        ``[x1, y1, x2, y2]`` floats, clipped to ``[0, width] x [0, height]``.
    """
    try:
        return box_checks.check_xyxy_box(box, height, width, key=key)
    except box_checks.InvalidBoxError as err:
        raise BadSampleError(str(err), kind='bad box') from None


def check_xywh_box(box, height: float, width: float, key: str = 'bbox') -> List[float]:
    """COCO ``[x, y, w, h]`` -> validated, clipped pixel xyxy (see :func:`check_xyxy_box`)."""
    try:
        return box_checks.check_xywh_box(box, height, width, key=key)
    except box_checks.InvalidBoxError as err:
        raise BadSampleError(str(err), kind='bad box') from None


def check_spans(spans, text: str, key: str = 'tokens_positive') -> List[List[int]]:
    """Validate ``[[start, end), ...]`` character spans into ``text``.

    Raises when the list is empty, a span is not two integers, ``start >= end``, or a span
    reaches outside ``text``.
    """
    if not isinstance(spans, (list, tuple)) or len(spans) == 0:
        raise BadSampleError(f'{key} must be a non-empty list of [start, end] spans, got {spans!r}',
                             kind='bad span')
    out = []
    for span in spans:
        if (not isinstance(span, (list, tuple)) or len(span) != 2
                or not all(isinstance(v, int) and not isinstance(v, bool) for v in span)):
            raise BadSampleError(f'{key} span must be two integers [start, end], got {span!r}', kind='bad span')
        start, end = span
        if not 0 <= start < end <= len(text):
            raise BadSampleError(
                f'{key} span {list(span)} lies outside the caption of length {len(text)}: {text!r}',
                kind='bad span')
        out.append([start, end])
    return out


def check_text(text, key: str = 'caption') -> str:
    """A caption must be a non-blank string."""
    if not isinstance(text, str) or not text.strip():
        raise BadSampleError(f'{key} is empty or not a string: {text!r}', kind='bad text')
    return text


def check_image_size(info: dict, keys: Sequence[str] = ('height', 'width')) -> List[int]:
    """Read positive integer ``height``/``width`` from an annotation dict."""
    out = []
    for k in keys:
        v = info.get(k)
        if isinstance(v, bool) or not isinstance(v, (int, float)) or v <= 0:
            raise BadSampleError(f'key {k!r} must be a positive number, got {v!r}', kind='bad image size')
        out.append(int(v))
    return out
