"""Noun phrases of a caption or expression, with nltk when its tagger data is installed.

GLIP / MM-GDINO / LLMDet find the entities of a free caption with nltk's POS tagger and a regexp
chunker. nltk data is never downloaded at run time: without ``averaged_perceptron_tagger(_eng)``
on ``nltk.data.path`` (``$NLTK_DATA``), :func:`nltk_available` is False and callers fall back —
the demo asks for ``--entities``; :func:`noun_phrases_or_whole` returns the whole expression
with a one-time warning (REC candidates, LLMDet's REC heuristic). Tokenization is nltk's
``wordpunct_tokenize`` (a regexp: no ``punkt`` data needed).
"""
import logging
import re
from typing import List, Optional, Tuple

from mmengine.logging import print_log

NLTK_HELP = ('nltk tagger data not found: put "averaged_perceptron_tagger_eng" under a folder on '
             '$NLTK_DATA (e.g. ~/nltk_data; `python -m nltk.downloader -d ~/nltk_data '
             'averaged_perceptron_tagger_eng` on a machine with network access, then copy it here)')

# adjectives / participles / numbers before nouns; a leading determiner or possessive is dropped
GRAMMAR = 'NP: {<DT|PRP\\$>?<JJ.*|VBN|VBG|CD>*<NN.*>+}'
_warned = False


def nltk_available() -> bool:
    """Whether nltk and its POS tagger data are installed."""
    try:
        import nltk
    except ImportError:
        return False
    for name in ('taggers/averaged_perceptron_tagger_eng', 'taggers/averaged_perceptron_tagger'):
        try:
            nltk.data.find(name)
            return True
        except LookupError:
            continue
    return False


def noun_phrases(text: str) -> List[str]:
    """Unique noun phrases of ``text`` in order. Raises ``LookupError`` without nltk data."""
    if not nltk_available():
        raise LookupError(NLTK_HELP)
    import nltk
    from nltk.tokenize import wordpunct_tokenize
    tree = nltk.RegexpParser(GRAMMAR).parse(nltk.pos_tag(wordpunct_tokenize(text)))
    phrases = []
    for sub in tree.subtrees(lambda t: t.label() == 'NP'):
        phrase = ' '.join(w for w, tag in sub.leaves() if tag not in ('DT', 'PRP$'))
        if phrase and phrase not in phrases:
            phrases.append(phrase)
    return phrases


def noun_phrases_or_whole(expression: str, use_nltk: bool = True) -> List[str]:
    """Noun phrases, or ``[expression]`` when there are none or nltk data is missing (warned once)."""
    global _warned
    text = ' '.join(expression.split())
    if not text:
        return []
    if not use_nltk:
        return [text]
    if not nltk_available():
        if not _warned:
            print_log(f'noun phrases: using the whole expression. {NLTK_HELP}', logger='current',
                      level=logging.WARNING)
            _warned = True
        return [text]
    return noun_phrases(text) or [text]


def first_noun_phrase(expression: str) -> Optional[str]:
    """The first noun phrase (LLMDet's REC heuristic), or None without nltk data / phrases."""
    if not nltk_available():
        return None
    phrases = noun_phrases(expression)
    return phrases[0] if phrases else None


def phrase_spans(caption: str, phrases: List[str]) -> List[List[Tuple[int, int]]]:
    """Character spans of each phrase in ``caption`` (case-insensitive, every occurrence).

    Raises ``ValueError`` naming a phrase that does not occur in the caption.
    """
    spans = []
    for phrase in phrases:
        phrase = phrase.strip()
        if not phrase:
            raise ValueError('empty entity phrase')
        found = [(m.start(), m.end()) for m in re.finditer(re.escape(phrase), caption, re.IGNORECASE)]
        if not found:
            raise ValueError(f'entity {phrase!r} does not occur in the caption {caption!r}')
        spans.append(found)
    return spans
