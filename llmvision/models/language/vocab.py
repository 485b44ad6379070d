"""Write a BERT WordPiece ``vocab.txt`` offline, keeping bert-base-uncased's special-token ids.

Used to build tiny randomly initialised text encoders (tests, benchmarks, synthetic data):
``[PAD]=0``, ``[UNK]=100``, ``[CLS]=101``, ``[SEP]=102``, ``[MASK]=103``, ``.=1012``, ``?=1029``
exactly as in bert-base-uncased, so code that hard-codes those ids (transformers' Grounding-DINO
does) sees the same delimiters.
"""
import os
from typing import Iterable

_FIXED = {0: '[PAD]', 100: '[UNK]', 101: '[CLS]', 102: '[SEP]', 103: '[MASK]', 1012: '.', 1029: '?'}


def write_bert_vocab(folder: str, words: Iterable[str], size: int = 1100) -> str:
    """Write ``folder/vocab.txt`` with ``words`` (lower-cased, unique) in the free slots; returns the folder."""
    words = [w.lower() for w in dict.fromkeys(words) if w.lower() not in _FIXED.values()]
    free = [i for i in range(size) if i not in _FIXED]
    if len(words) > len(free) - 10:
        raise ValueError(f'write_bert_vocab: {len(words)} words do not fit a vocabulary of {size}')
    vocab = dict(_FIXED)
    punct = [',', '!', "'", '-', '(', ')', ':', ';', '"', '/']
    for i, w in zip(free, punct + words):
        vocab[i] = w
    for i in free:
        vocab.setdefault(i, f'[unused{i}]')
    os.makedirs(folder, exist_ok=True)
    with open(os.path.join(folder, 'vocab.txt'), 'w') as f:
        f.write('\n'.join(vocab[i] for i in range(size)) + '\n')
    return folder
