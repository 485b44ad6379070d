"""Noun phrases of a caption (phrase-grounding entities), with nltk when its data is installed.

GLIP / MM-GDINO / LLMDet find the entities of a free caption with nltk's tokenizer, POS tagger and
the chunk grammar ``NP: {<DT>?<JJ.*>*<NN.*>+}``. nltk's data is never downloaded at run time:
when ``punkt``/``punkt_tab`` and ``averaged_perceptron_tagger(_eng)`` are not found on
``nltk.data.path`` (``$NLTK_DATA``), :func:`nltk_available` is False and callers fall back
(the demo's ``--entities``, the whole expression for REC) with a warning that says what to install.
"""
import re
from typing import List, Optional, Tuple

NLTK_HELP = ('nltk data not found: put "punkt_tab" (or "punkt") and "averaged_perceptron_tagger_eng" '
             '(or "averaged_perceptron_tagger") under a folder on $NLTK_DATA (e.g. ~/nltk_data; '
             'python -m nltk.downloader -d ~/nltk_data punkt_tab averaged_perceptron_tagger_eng on a '
             'machine with network access)')

_GRAMMAR = 'NP: {<DT>?<JJ.*>*<NN.*>+}'


def _has(resource_names) -> bool:
    import nltk
    for name in resource_names:
        try:
            nltk.data.find(name)
            return True
        except LookupError:
            continue
    return False


def nltk_available() -> bool:
    """Whether the tokenizer and tagger data needed by :func:`noun_phrases` are installed."""
    try:
        import nltk  # noqa: F401
    except ImportError:
        return False
    return (_has(['tokenizers/punkt_tab', 'tokenizers/punkt'])
            and _has(['taggers/averaged_perceptron_tagger_eng', 'taggers/averaged_perceptron_tagger']))


def noun_phrases(caption: str) -> List[str]:
    """Noun phrases of ``caption`` in order (leading determiners dropped). Needs nltk data."""
    if not nltk_available():
        raise LookupError(NLTK_HELP)
    import nltk
    tagged = nltk.pos_tag(nltk.word_tokenize(caption))
    tree = nltk.RegexpParser(_GRAMMAR).parse(tagged)
    phrases = []
    for sub in tree.subtrees(filter=lambda t: t.label() == 'NP'):
        words = [w for w, tag in sub.leaves() if tag != 'DT']
        if words:
            phrases.append(' '.join(words))
    return phrases


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


def first_noun_phrase(expression: str) -> Optional[str]:
    """The first noun phrase (LLMDet's REC heuristic), or None without nltk data / phrases."""
    if not nltk_available():
        return None
    phrases = noun_phrases(expression)
    return phrases[0] if phrases else None
