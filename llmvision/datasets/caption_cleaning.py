"""Caption targets as LLMDet cleans them (REFERENCE.md section 9).

* :func:`remove_speculative_clauses` on the long image captions: in every sentence that mentions a
  word of guessing or negation (``possibly``, ``seems``, ``appears to``, `` no ``, `` not ``, ...),
  the comma-separated clauses holding such a word are removed; what is left ends with a full stop;
  a sentence left empty, or left as a bare prepositional phrase (``in the corner.``), is dropped.
  The dataset keeps the original caption when nothing is left.
* :func:`clean_phrase` on the region phrases: leading articles and numerals stripped, the first
  letter capitalised, a final full stop.
"""
import re
from typing import List

SPECULATIVE_WORDS = (
    'possibly', 'probable', 'probably', 'maybe', 'perhaps',
    'suggest', 'suggests', 'suggesting', 'suggested',
    'speculate', 'speculates', 'speculating', 'speculated',
    'assume', 'assumes', 'assuming', 'assumed',
    'guess', 'guesses', 'guessing', 'guessed',
    'suppose', 'supposes', 'supposing', 'supposed',
    'appear', 'appears', 'appeared', 'appearing',
    'seem', 'seems', 'seemed', 'seeming',
    'indicate', 'indicates', 'indicating', 'indicated',
    'hint', 'hints', 'hinting', 'hinted',
    'imply', 'implies', 'implying', 'implied',
    'infer', 'infers', 'inferring', 'inferred',
    'expect', 'expects', 'expecting', 'expected',
    'assuming that', 'tends to', 'tends not to', 'seems to', 'looks like', 'sounds like', 'appears to',
    ' no ', ' not ')
PREPOSITIONS = frozenset((
    'in', 'on', 'at', 'by', 'with', 'about', 'against', 'between', 'into', 'through', 'during', 'before',
    'after', 'above', 'below', 'to', 'from', 'up', 'down', 'for', 'of', 'under', 'over', 'as'))
# a clause: an optional leading comma, text without commas around a whole speculative word, and an
# optional trailing comma
_CLAUSE = re.compile(r',?[^,]*\b(?:' + '|'.join(SPECULATIVE_WORDS) + r')\b[^,]*,?')
_SENTENCE_BREAK = re.compile(r'(?<=\.)\s+')

ARTICLES = frozenset(('a', 'an', 'the'))
NUMBER_WORDS = frozenset((
    'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine', 'ten', 'eleven', 'twelve',
    'thirteen', 'fourteen', 'fifteen', 'sixteen', 'seventeen', 'eighteen', 'nineteen', 'twenty'))
_NUMERAL = re.compile(r'^\d+([.,]\d+)?$')


def _clean_sentence(sentence: str) -> str:
    """One sentence with its speculative clauses removed ('' when nothing useful is left)."""
    kept = _CLAUSE.sub('', sentence).strip()
    if not kept.endswith('.'):
        kept += '.'
    words = kept.split()
    if kept == '.' or (words and words[0].lower() in PREPOSITIONS):
        return ''
    return kept


def remove_speculative_clauses(text: str) -> str:
    """``text`` without its guessing / negated clauses (see the module docstring); may be ''."""
    out: List[str] = []
    for sentence in _SENTENCE_BREAK.split(text):
        if any(word in sentence for word in SPECULATIVE_WORDS):
            sentence = _clean_sentence(sentence)
        sentence = sentence.strip()
        if sentence:
            out.append(sentence)
    return ' '.join(out).strip()


def clean_phrase(phrase: str) -> str:
    """``'the two red circles'`` -> ``'Red circles.'``: leading articles and numerals stripped,
    capitalised, one final full stop. A phrase made only of those words is kept as it was."""
    words = str(phrase).strip().rstrip('.').split()
    start = 0
    while start < len(words) and (words[start].lower() in ARTICLES or words[start].lower() in NUMBER_WORDS
                                  or _NUMERAL.match(words[start])):
        start += 1
    words = words[start:] or words
    if not words:
        return ''
    text = ' '.join(words)
    return text[0].upper() + text[1:] + '.'
