"""Where the ``<REF>`` tokens of a token sequence are, which triplet owns each and which unit decodes it.

Read from token ids alone (the tags are single tokens): the k-th ``<REF>`` belongs to the triplet opened by
the last ``<Phrase>`` before it, and its unit is the text between the last ``<Unit>`` and ``</Unit>``.
"""
from dataclasses import dataclass
from typing import Dict, List, Sequence


@dataclass
class RefLayout:
    """``positions`` of the ``<REF>`` tokens in one row, and per ``<REF>`` its ``group`` (triplet index in the
    row) and ``unit`` (text)."""
    positions: List[int]
    groups: List[int]
    units: List[str]


def ref_layout(ids: Sequence[int], token_ids: Dict[str, int], decode) -> RefLayout:
    """Layout of one row of ``ids`` given ``token_ids`` (tag -> id) and ``decode(list of ids) -> str``.

    A ``<REF>`` without an opened triplet / unit gets group -1 / unit ``''`` (the model skips it).
    """
    ref, phrase = token_ids['<REF>'], token_ids['<Phrase>']
    unit_open, unit_close = token_ids['<Unit>'], token_ids['</Unit>']
    out = RefLayout([], [], [])
    group, unit, unit_start = -1, '', None
    for pos, t in enumerate(ids):
        if t == phrase:
            group += 1
            unit = ''
        elif t == unit_open:
            unit_start = pos + 1
        elif t == unit_close and unit_start is not None:
            unit = decode(list(ids[unit_start:pos])).strip()
            unit_start = None
        elif t == ref:
            out.positions.append(pos)
            out.groups.append(group)
            out.units.append(unit)
    return out
