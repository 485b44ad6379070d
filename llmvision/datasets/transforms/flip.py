"""Horizontal flip of image, boxes and caption (``left`` <-> ``right``).

Boxes: ``x1' = W - x2``, ``x2' = W - x1``. A caption (``text`` str) has the words ``left`` and
``right`` swapped (whole words, case kept) and its ``tokens_positive`` spans moved to the new
character positions; ``phrases`` and ``long_caption`` are swapped too. A category-name list
(``custom_entities=True``) is left as it is: its labels name categories, not directions.
"""
import random
import re
from typing import Callable, List, Tuple

import mmcv
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS

_LEFT_RIGHT = re.compile(r'\b(left|right)\b', re.IGNORECASE)


def _same_case(word: str, replacement: str) -> str:
    if word.isupper():
        return replacement.upper()
    if word[0].isupper():
        return replacement.capitalize()
    return replacement


def swap_left_right(text: str) -> Tuple[str, Callable[[int, bool], int]]:
    """Swap the words left/right in ``text``.

    Returns:
        ``(new_text, map_pos)`` where ``map_pos(p, is_end)`` maps a character offset of ``text``
        to ``new_text``; an offset inside a swapped word maps to that word's new start
        (``is_end=False``) or end (``is_end=True``).
    """
    edits: List[Tuple[int, int, int, int]] = []  # old start, old end, new start, new end
    parts, pos, shift = [], 0, 0
    for m in _LEFT_RIGHT.finditer(text):
        word = m.group(0)
        rep = _same_case(word, 'right' if word.lower() == 'left' else 'left')
        parts += [text[pos:m.start()], rep]
        edits.append((m.start(), m.end(), m.start() + shift, m.start() + shift + len(rep)))
        shift += len(rep) - len(word)
        pos = m.end()
    parts.append(text[pos:])

    def map_pos(p: int, is_end: bool) -> int:
        delta = 0
        for old_s, old_e, new_s, new_e in edits:
            if p >= old_e:
                delta = new_e - old_e
            elif p > old_s:
                return new_e if is_end else new_s
            else:
                break
        return p + delta

    return ''.join(parts), map_pos


@TRANSFORMS.register_module()
class RandomFlip(BaseTransform):
    """Flip horizontally with probability ``prob``; sets ``flip`` and ``flip_direction``.

    Updates ``img`` ``[H, W, 3]``, ``gt_bboxes`` ``[N, 4]`` pixel xyxy and, when ``swap_text``,
    the caption, its ``tokens_positive``, ``phrases`` and ``long_caption``.
    """

    def __init__(self, prob: float = 0.5, swap_text: bool = True):
        if not 0.0 <= prob <= 1.0:
            raise ValueError(f'prob must be in [0, 1], got {prob}')
        self.prob = prob
        self.swap_text = swap_text

    def transform(self, results: dict) -> dict:
        flip = random.random() < self.prob
        results['flip'] = flip
        results['flip_direction'] = 'horizontal' if flip else None
        if not flip:
            return results
        img = results['img']
        w = img.shape[1]
        results['img'] = mmcv.imflip(img, direction='horizontal')
        boxes = results.get('gt_bboxes')
        if boxes is not None and len(boxes):
            flipped = boxes.copy()
            flipped[:, 0] = w - boxes[:, 2]
            flipped[:, 2] = w - boxes[:, 0]
            results['gt_bboxes'] = flipped
        if self.swap_text:
            self._swap_text(results)
        return results

    @staticmethod
    def _swap_text(results: dict) -> None:
        text = results.get('text')
        if isinstance(text, str):
            new_text, map_pos = swap_left_right(text)
            results['text'] = new_text
            if results.get('tokens_positive') is not None:
                results['tokens_positive'] = [[[map_pos(s, False), map_pos(e, True)] for s, e in spans]
                                              for spans in results['tokens_positive']]
        if results.get('phrases') is not None:
            results['phrases'] = [swap_left_right(p)[0] for p in results['phrases']]
        if isinstance(results.get('long_caption'), str):
            results['long_caption'] = swap_left_right(results['long_caption'])[0]

    def __repr__(self):
        return f'{type(self).__name__}(prob={self.prob}, swap_text={self.swap_text})'
