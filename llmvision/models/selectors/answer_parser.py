"""LLM answer text -> chosen candidate index (REFERENCE.md section 5).

The first run of digits in the generated text is the index. Anything else (no digits, an
index outside the prompt's range) is reported with a status so the caller falls back to the
detector's top box and counts the event.
"""
import re
from typing import Optional, Tuple

from llmvision.structures.candidates import fallback_choice  # noqa: F401  (re-exported)

_DIGITS = re.compile(r'\d+')

OK = 'ok'
NO_DIGITS = 'invalid'
OUT_OF_RANGE = 'out_of_range'


def parse_answer(text: str, num_boxes: int, index_start: int = 0) -> Tuple[Optional[int], str]:
    """Return ``(index, status)``.

    ``index`` is the printed index (``index_start``-based) when ``status == 'ok'``, else
    ``None``; ``status`` is ``'ok'``, ``'invalid'`` (no digits) or ``'out_of_range'``.
    """
    m = _DIGITS.search(text or '')
    if m is None:
        return None, NO_DIGITS
    idx = int(m.group())
    if not index_start <= idx < index_start + num_boxes:
        return None, OUT_OF_RANGE
    return idx, OK
