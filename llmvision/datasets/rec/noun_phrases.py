"""Noun phrases of a referring expression (for object-detection candidates).

Uses nltk's POS tagger + a regexp chunker when its data (``averaged_perceptron_tagger_eng``)
is installed locally; otherwise (llmvision never downloads) the whole expression is the only
phrase and a warning says so once.
"""
import logging
from typing import List

from mmengine.logging import print_log

GRAMMAR = 'NP: {<DT|PRP\\$>?<JJ.*|VBN|VBG|CD>*<NN.*>+}'
_warned = False


def _tagger_available() -> bool:
    try:
        import nltk
        nltk.data.find('taggers/averaged_perceptron_tagger_eng')
        return True
    except (ImportError, LookupError):
        return False


def noun_phrases(expression: str, use_nltk: bool = True) -> List[str]:
    """Unique noun chunks of ``expression`` (order kept); ``[expression]`` when there are none
    or nltk's tagger data is missing."""
    global _warned
    text = ' '.join(expression.split())
    if not text:
        return []
    if not use_nltk:
        return [text]
    if not _tagger_available():
        if not _warned:
            print_log('noun_phrases: nltk tagger data (averaged_perceptron_tagger_eng) not found; '
                      'using the whole expression as the only phrase. Install it offline with '
                      '`python -m nltk.downloader averaged_perceptron_tagger_eng` on a machine '
                      'with network and copy nltk_data here.', logger='current',
                      level=logging.WARNING)
            _warned = True
        return [text]
    import nltk
    from nltk.tokenize import wordpunct_tokenize
    tree = nltk.RegexpParser(GRAMMAR).parse(nltk.pos_tag(wordpunct_tokenize(text)))
    phrases = []
    for sub in tree.subtrees(lambda t: t.label() == 'NP'):
        words = [w for w, tag in sub.leaves() if tag not in ('DT', 'PRP$')]
        p = ' '.join(words)
        if p and p not in phrases:
            phrases.append(p)
    return phrases or [text]
