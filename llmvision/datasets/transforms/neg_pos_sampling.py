"""Sample a detection prompt: the image's positive categories plus random negatives.

For detection-form data with a large vocabulary (Objects365, V3Det) a prompt cannot hold every
name (the text encoder takes at most ``max_tokens``), so each training image gets its positive
categories plus ``num_sample_negative`` random others, shuffled. ``text`` becomes that shorter
name list (still ``custom_entities=True``: the model builds ``"a . b ."`` from it) and
``gt_bboxes_labels`` are remapped to positions in it. Names are added positives first while the
prompt fits ``max_tokens``; a positive that does not fit drops its boxes (counted in
``results['num_dropped_positive_labels']``).
"""
import random
from typing import Callable, Optional, Union

import numpy as np
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

_PER_BOX_KEYS = ('gt_bboxes', 'gt_bboxes_labels', 'gt_ignore_flags')


def _word_count(name: str) -> int:
    return len(name.split())


@TRANSFORMS.register_module()
class RandomSamplingNegPos(BaseTransform):
    """Positive + sampled negative category names per image.

    Args:
        num_sample_negative: negatives drawn with probability ``full_sampling_prob``; otherwise a
            number uniform in ``[1, num_sample_negative]``.
        max_tokens: token budget of the whole prompt (incl. 2 special tokens and one separator
            token per name).
        full_sampling_prob: probability of drawing exactly ``num_sample_negative`` negatives.
        tokenizer: a local tokenizer folder (loaded with ``transformers.AutoTokenizer``), an object
            with ``.tokenize(str)``, or ``None`` to count whitespace words (a lower bound for WordPiece).
    """

    def __init__(self, num_sample_negative: int = 85, max_tokens: int = 256, full_sampling_prob: float = 0.5,
                 tokenizer: Optional[Union[str, object]] = None):
        if num_sample_negative < 0 or max_tokens < 3 or not 0 <= full_sampling_prob <= 1:
            raise ValueError('need num_sample_negative >= 0, max_tokens >= 3, 0 <= full_sampling_prob <= 1')
        self.num_sample_negative = num_sample_negative
        self.max_tokens = max_tokens
        self.full_sampling_prob = full_sampling_prob
        self.tokenizer = tokenizer
        self._count: Optional[Callable[[str], int]] = None

    def _token_count(self, name: str) -> int:
        if self._count is None:
            tok = self.tokenizer
            if isinstance(tok, str):
                from transformers import AutoTokenizer  # local folder only; imported lazily
                tok = AutoTokenizer.from_pretrained(tok, local_files_only=True)
            self._count = _word_count if tok is None else (lambda s: len(tok.tokenize(s)))
        return self._count(name)

    def transform(self, results: dict) -> dict:
        names = results['text']
        if not isinstance(names, (list, tuple)):
            raise TypeError(f"RandomSamplingNegPos needs a category-name list in 'text' "
                            f"(detection form), got {type(names).__name__} for {results.get('img_path')}")
        labels = np.asarray(results.get('gt_bboxes_labels', np.zeros(0, np.int64)), dtype=np.int64)
        positives = list(dict.fromkeys(labels.tolist()))
        random.shuffle(positives)
        others = [i for i in range(len(names)) if i not in set(positives)]
        if random.random() < self.full_sampling_prob:
            n_neg = self.num_sample_negative
        else:
            n_neg = random.randint(1, max(1, self.num_sample_negative))
        negatives = random.sample(others, min(n_neg, len(others)))

        budget = self.max_tokens - 2  # [CLS] ... [SEP]
        chosen = []
        for label in positives + negatives:
            cost = self._token_count(str(names[label])) + 1  # the name and its '.'
            if cost > budget:
                continue
            budget -= cost
            chosen.append(label)
        random.shuffle(chosen)
        new_index = {old: new for new, old in enumerate(chosen)}
        keep = np.array([lab in new_index for lab in labels.tolist()], dtype=bool)
        for key in _PER_BOX_KEYS:
            if key in results:
                results[key] = results[key][keep]
        results['gt_bboxes_labels'] = np.array([new_index[lab] for lab in labels[keep].tolist()], np.int64)
        results['num_dropped_positive_labels'] = len([p for p in positives if p not in new_index])
        results['text'] = [names[i] for i in chosen]
        results['custom_entities'] = True
        results['tokens_positive'] = None
        return results

    def __repr__(self):
        return (f'{type(self).__name__}(num_sample_negative={self.num_sample_negative}, '
                f'max_tokens={self.max_tokens}, full_sampling_prob={self.full_sampling_prob})')
