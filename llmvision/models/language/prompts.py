"""Prompt building: a caption or a category list -> caption string + character spans per entity.

A detection prompt joins the names with ``" . "`` and ends with ``" ."``
(``['cat', 'remote control'] -> 'cat . remote control .'``); each name becomes one entity whose
span is its ``[start, end)`` character range in the caption. A grounding caption is used as-is
with the ``tokens_positive`` spans given by the dataset.
"""
from typing import List, Sequence, Tuple, Union

Spans = List[List[Tuple[int, int]]]


def build_category_prompt(names: Sequence[str], separator: str = ' . ',
                          suffix: str = ' .') -> Tuple[str, Spans]:
    """``names`` -> ``(caption, entity_spans)``; ``entity_spans[i] = [(start, end)]`` for name ``i``."""
    if len(names) == 0:
        raise ValueError('build_category_prompt: the category list is empty; a detection prompt '
                         'needs at least one name')
    caption, spans = '', []
    for i, name in enumerate(names):
        name = str(name).strip()
        if not name:
            raise ValueError(f'build_category_prompt: category name #{i} is empty')
        start = len(caption)
        caption += name
        spans.append([(start, len(caption))])
        caption += separator if i < len(names) - 1 else suffix
    return caption, spans


def build_prompt(text: Union[str, Sequence[str]],
                 tokens_positive=None) -> Tuple[str, Spans]:
    """Normalise a data sample's ``text`` (+ ``tokens_positive``) to ``(caption, entity_spans)``.

    ``text`` a list of names -> a category prompt (``tokens_positive`` ignored unless given);
    ``text`` a caption ``str`` -> ``tokens_positive`` must give the spans of each entity (a list
    per entity of ``[start, end)`` pairs); without it the whole caption (minus a final period)
    is one entity, which is how a referring expression is grounded.
    """
    if isinstance(text, (list, tuple)):
        caption, spans = build_category_prompt(text)
        if tokens_positive is not None:
            spans = _check_spans(caption, tokens_positive)
        return caption, spans
    if not isinstance(text, str):
        raise TypeError(f'build_prompt: text must be a str or a list of names, got {type(text)}')
    caption = text
    if not caption.strip():
        raise ValueError('build_prompt: the caption is empty; give at least one phrase')
    if tokens_positive is None:
        body = caption.rstrip()
        if body.endswith('.'):
            body = body[:-1].rstrip()
        end = len(body)
        start = len(caption) - len(caption.lstrip())
        return caption, [[(start, end)]]
    return caption, _check_spans(caption, tokens_positive)


def _check_spans(caption: str, tokens_positive) -> Spans:
    out = []
    if len(tokens_positive) == 0:
        raise ValueError(f'tokens_positive is empty for caption {caption!r}: the text has no phrases')
    for i, ent in enumerate(tokens_positive):
        if len(ent) and isinstance(ent[0], (int, float)):
            ent = [ent]
        pairs = []
        for span in ent:
            if len(span) != 2:
                raise ValueError(f'tokens_positive[{i}] span {span!r} is not a [start, end) pair')
            s, e = int(span[0]), int(span[1])
            if not 0 <= s < e <= len(caption):
                raise ValueError(f'tokens_positive[{i}] span ({s}, {e}) is outside caption '
                                 f'{caption!r} (length {len(caption)})')
            pairs.append((s, e))
        out.append(pairs)
    return out


def chunk_names(names: Sequence[str], chunk_size: int = 40) -> List[List[str]]:
    """Split a large vocabulary into prompts of at most ``chunk_size`` names (LVIS: 40)."""
    if chunk_size < 1:
        raise ValueError(f'chunk_size must be >= 1, got {chunk_size}')
    names = list(names)
    return [names[i:i + chunk_size] for i in range(0, len(names), chunk_size)]
