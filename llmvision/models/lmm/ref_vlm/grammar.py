"""The REF-VLM triplet grammar: serializer and strict parser.

An answer is free text with triplets in it (REFERENCE.md section 7)::

    [<Task>free text</Task>] ... <Phrase>concept</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>) ...

Each triplet names a concept, the decoding unit (``box``, ``keypoint``, ...) and one ``[i]<REF>`` per
target, indices counting from 0 without gaps. The LLM's hidden state at every ``<REF>`` is the query of
that unit's decoder: the k-th ``<REF>`` of an answer belongs to the triplet that holds it.
Whitespace is allowed between the elements of a unit group (``(``, tags, ``[i]``, ``<REF>``, ``)``).

:func:`parse_answer` raises :class:`RefGrammarError` (a ``ValueError``) with the character offset and
a snippet for malformed text: unbalanced / nested tags, an unknown unit, an index gap, a ``<REF>``
outside a triplet, a phrase without its unit group.
"""
import re
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple, Union

from .tokens import PHRASE_CLOSE, PHRASE_OPEN, REF_TOKEN, TASK_CLOSE, TASK_OPEN, UNIT_CLOSE, UNIT_OPEN

DEFAULT_UNITS = ('box', 'keypoint', 'mask', 'depth')
_ANY_TAG = re.compile('|'.join(re.escape(t) for t in (TASK_OPEN, TASK_CLOSE, PHRASE_OPEN, PHRASE_CLOSE,
                                                         UNIT_OPEN, UNIT_CLOSE, REF_TOKEN)))
_WS = re.compile(r'\s*')
_INDEX = re.compile(r'\[(\d+)\]')


class RefGrammarError(ValueError):
    """Malformed REF-VLM answer text; ``pos`` is the character offset of the problem."""

    def __init__(self, msg: str, text: str = '', pos: int = 0):
        snippet = text[max(0, pos - 20):pos + 30].replace('\n', '\\n')
        super().__init__(f'{msg} at character {pos}: ...{snippet}...' if text else msg)
        self.pos = pos


@dataclass(frozen=True)
class Triplet:
    """One (concept, decoding unit, number of targets) triplet; ``span`` = ``(start, end)`` characters
    of the triplet in the parsed text (``None`` when built by hand)."""
    phrase: str
    unit: str
    num_refs: int
    span: Optional[Tuple[int, int]] = field(default=None, compare=False)


@dataclass
class ParsedAnswer:
    """Result of :func:`parse_answer`: the task text (or None) and the triplets in order."""
    task: Optional[str]
    triplets: List[Triplet]

    @property
    def ref_owner(self) -> List[int]:
        """For the k-th ``<REF>`` of the answer, the index of its triplet (``[num_refs_total]``)."""
        return [i for i, t in enumerate(self.triplets) for _ in range(t.num_refs)]

    @property
    def num_refs(self) -> int:
        return sum(t.num_refs for t in self.triplets)


def serialize_triplet(phrase: str, unit: str, num_refs: int) -> str:
    """``<Phrase>phrase</Phrase>(<Unit>unit</Unit>[0]<REF>...[n-1]<REF>)``."""
    if num_refs < 1:
        raise ValueError(f'serialize_triplet: a triplet needs at least one target, got {num_refs}')
    if _ANY_TAG.search(phrase) or _ANY_TAG.search(unit):
        raise ValueError(f'serialize_triplet: phrase/unit may not contain tags: {phrase!r}, {unit!r}')
    refs = ''.join(f'[{i}]{REF_TOKEN}' for i in range(num_refs))
    return f'{PHRASE_OPEN}{phrase}{PHRASE_CLOSE}({UNIT_OPEN}{unit}{UNIT_CLOSE}{refs})'


def serialize_answer(parts: Sequence[Union[str, Triplet]], task: Optional[str] = None) -> str:
    """Join free text pieces and :class:`Triplet` s into one answer (optionally led by ``<Task>...</Task>``)."""
    out = [] if task is None else [f'{TASK_OPEN}{task}{TASK_CLOSE}']
    for p in parts:
        out.append(serialize_triplet(p.phrase, p.unit, p.num_refs) if isinstance(p, Triplet) else str(p))
    return ''.join(out)


def _expect(text: str, pos: int, literal: str, what: str) -> int:
    pos = _WS.match(text, pos).end()
    if not text.startswith(literal, pos):
        raise RefGrammarError(f'expected {literal!r} {what}', text, pos)
    return pos + len(literal)


def _unit_group(text: str, pos: int, units: Sequence[str]) -> Tuple[str, int, int]:
    """Parse ``(<Unit>u</Unit>[0]<REF>...)`` from ``pos``; returns ``(unit, num_refs, end)``."""
    pos = _expect(text, pos, '(', 'after </Phrase> (a phrase must be followed by its unit group)')
    pos = _expect(text, pos, UNIT_OPEN, 'to open the unit group')
    end = text.find(UNIT_CLOSE, pos)
    inner_tag = _ANY_TAG.search(text, pos)
    if end < 0 or (inner_tag is not None and inner_tag.start() < end):
        raise RefGrammarError(f'unbalanced {UNIT_OPEN}: no {UNIT_CLOSE} before the next tag', text, pos)
    unit = text[pos:end].strip()
    if unit not in units:
        raise RefGrammarError(f'unknown unit {unit!r} (known: {", ".join(units)})', text, pos)
    pos = end + len(UNIT_CLOSE)
    n = 0
    while True:
        pos = _WS.match(text, pos).end()
        m = _INDEX.match(text, pos)
        if m is None:
            break
        if int(m.group(1)) != n:
            raise RefGrammarError(f'index gap: expected [{n}], found [{m.group(1)}]', text, pos)
        pos = _expect(text, m.end(), REF_TOKEN, f'after [{n}]')
        n += 1
    if n == 0:
        raise RefGrammarError('a unit group needs at least one [0]<REF>', text, pos)
    pos = _expect(text, pos, ')', 'to close the unit group')
    return unit, n, pos


def parse_answer(text: str, units: Sequence[str] = DEFAULT_UNITS) -> ParsedAnswer:
    """Parse an answer into its task text and triplets (strict; see the module docstring).

    Raises:
        RefGrammarError: malformed text (the message gives the offset and a snippet).
    """
    task, triplets, pos = None, [], 0
    while True:
        m = _ANY_TAG.search(text, pos)
        if m is None:
            return ParsedAnswer(task, triplets)
        tag, start = m.group(0), m.start()
        if tag == TASK_OPEN:
            if task is not None or triplets:
                raise RefGrammarError(f'{TASK_OPEN} must come once, before any triplet', text, start)
            end = text.find(TASK_CLOSE, m.end())
            nxt = _ANY_TAG.search(text, m.end())
            if end < 0 or nxt.start() < end:
                raise RefGrammarError(f'unbalanced {TASK_OPEN}: no {TASK_CLOSE} before the next tag',
                                      text, start)
            task, pos = text[m.end():end], end + len(TASK_CLOSE)
        elif tag == PHRASE_OPEN:
            end = text.find(PHRASE_CLOSE, m.end())
            nxt = _ANY_TAG.search(text, m.end())
            if end < 0 or nxt.start() < end:
                raise RefGrammarError(f'unbalanced {PHRASE_OPEN}: no {PHRASE_CLOSE} before the next tag',
                                      text, start)
            phrase = text[m.end():end].strip()
            if not phrase:
                raise RefGrammarError('empty phrase', text, start)
            unit, n, pos = _unit_group(text, end + len(PHRASE_CLOSE), units)
            triplets.append(Triplet(phrase, unit, n, span=(start, pos)))
        elif tag == REF_TOKEN:
            raise RefGrammarError(f'{REF_TOKEN} outside a triplet', text, start)
        else:
            raise RefGrammarError(f'unbalanced {tag}: no matching opening tag', text, start)
