"""LLMDet's test-time heuristic for referring expressions (REC), an option of GroundingDINO's test_cfg.

LLMDet (``mmdet/models/detectors/grounding_dino.py``: ``get_rec_phrase`` and the ``is_rec_task``
branch of ``predict``) does two things for a referring expression:

1. **Entity = first noun phrase.** The whole expression is the text prompt, but only the tokens of
   its first noun phrase (nltk POS tagger + regexp chunker) are scored; every occurrence of that
   phrase in the expression is one entity. No phrase, or a phrase that does not occur in the text
   -> the whole expression is the entity.
2. **Spatial re-scoring.** For each spatial word group found in the expression (substring test), a
   bias is added to every prediction's score and the predictions are re-sorted::

       'left'             -> + weight * (1 - cx / W) + offset
       'right'            -> + weight * cx / W       + offset
       'top' | 'upper'    -> + weight * (1 - cy / H) + offset
       'under' | 'bottom' -> + weight * cy / H       + offset

   with ``(cx, cy)`` the box centre in the original image ``(H, W) = ori_shape`` and LLMDet's
   ``weight = 0.7``, ``offset = 1``. Substrings also match the ``-most`` forms ("leftmost",
   "topmost"). The offset is the same for every box, so it never changes the order; it only lifts the
   re-scored scores above 1. Top-1 (REC) is taken *after* the re-sort.

Differences from LLMDet, kept small and documented: the spatial test is case-insensitive;
``match='word'`` (not the default) only matches words that *start* with a spatial word (so "bright"
is not "right", "laptop" is not "top"); the noun phrase comes from
:mod:`llmvision.utils.noun_phrases` (its grammar drops a leading determiner: "the woman"
-> "woman"); the caption is left as given (LLMDet appends ". ").

nltk data is never downloaded: without the tagger data the first-noun-phrase step falls back to the
whole expression (a one-time warning says what to install) and the spatial re-scoring still runs.

Config (``GroundingDINO(test_cfg=dict(rec_heuristic=dict(...)))``): see :class:`RecHeuristic`.
A sample is a REC sample when its ``text`` is a ``str`` and ``metainfo['rec']`` is true, or
``test_cfg['rec_top1']`` is set, or ``rec_heuristic.all_captions`` is set (RefExp evaluation of
RefCOCO-style datasets, whose samples carry no ``rec`` flag and are scored by P@k over the sorted
predictions).
"""
import logging
import re
from dataclasses import dataclass, fields
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
from mmengine.logging import print_log
from mmengine.structures import InstanceData

from llmvision.utils import noun_phrases as nps

# LLMDet's word groups: one bias per group however many of its words occur
LLMDET_SPATIAL_WORDS: Dict[str, Tuple[str, ...]] = {
    'left': ('left',), 'right': ('right',), 'top': ('top', 'upper'), 'bottom': ('under', 'bottom')}
DIRECTIONS = ('left', 'right', 'top', 'bottom')
MATCH_MODES = ('substring', 'word')
_WARNED = False

Spans = List[List[Tuple[int, int]]]


def spatial_directions(text: str, words: Optional[Dict[str, Sequence[str]]] = None,
                       match: str = 'substring') -> List[str]:
    """Directions (``'left' | 'right' | 'top' | 'bottom'``) whose words occur in ``text``.

    ``match='substring'``: LLMDet's ``word in text`` test (lower-cased); ``'word'``: a word of the
    text must start with the spatial word ("leftmost" yes, "bright" no).
    """
    if match not in MATCH_MODES:
        raise ValueError(f'rec_heuristic.match must be one of {MATCH_MODES}, got {match!r}')
    words = LLMDET_SPATIAL_WORDS if words is None else words
    low = text.lower()
    found = []
    for direction in DIRECTIONS:
        for w in words.get(direction, ()):
            w = w.lower()
            hit = (w in low) if match == 'substring' else \
                re.search(r'\b' + re.escape(w), low) is not None
            if hit:
                found.append(direction)
                break
    return found


def spatial_bias(bboxes: torch.Tensor, directions: Sequence[str], ori_shape: Sequence[int],
                 weight: float = 0.7, offset: float = 1.0) -> torch.Tensor:
    """Score bias of each box. ``bboxes [K, 4]`` pixel xyxy in ``ori_shape (H, W)`` -> ``[K]``.

    Sum over ``directions`` of ``weight * preference + offset`` where the preference in ``[0, 1]``
    is ``1 - cx/W`` (left), ``cx/W`` (right), ``1 - cy/H`` (top), ``cy/H`` (bottom).
    """
    h, w = float(ori_shape[0]), float(ori_shape[1])
    cx = (bboxes[:, 0] + bboxes[:, 2]) / 2 / w
    cy = (bboxes[:, 1] + bboxes[:, 3]) / 2 / h
    prefer = {'left': 1 - cx, 'right': cx, 'top': 1 - cy, 'bottom': cy}
    bias = bboxes.new_zeros(bboxes.shape[0])
    for d in directions:
        if d not in prefer:
            raise ValueError(f'unknown spatial direction {d!r}; expected one of {DIRECTIONS}')
        bias = bias + prefer[d] * weight + offset
    return bias


def first_phrase_or_none(expression: str) -> Optional[str]:
    """The first noun phrase of ``expression``; None without nltk tagger data (warned once) or when
    the expression has no noun phrase."""
    global _WARNED
    if not nps.nltk_available():
        if not _WARNED:
            print_log('rec_heuristic: nltk tagger data is missing, so the whole expression is the '
                      f'REC entity (spatial re-scoring still applies). {nps.NLTK_HELP}',
                      logger='current', level=logging.WARNING)
            _WARNED = True
        return None
    phrase = nps.first_noun_phrase(expression)
    return phrase.strip() if phrase and phrase.strip() else None


def first_phrase_spans(expression: str) -> Optional[Spans]:
    """Entity spans of the first noun phrase: one entity ``[(start, end)]`` per occurrence in
    ``expression`` (LLMDet), or None (use the whole expression) when there is no usable phrase."""
    phrase = first_phrase_or_none(expression)
    if phrase is None:
        return None
    try:
        occurrences = nps.phrase_spans(expression, [phrase])[0]
    except ValueError:  # the tagger's tokens do not re-join to the text (e.g. "t-shirt")
        return None
    return [[span] for span in occurrences]


@dataclass
class RecHeuristic:
    """LLMDet's REC inference heuristic (see the module docstring).

    Args:
        first_noun_phrase: score only the first noun phrase of the expression (nltk; falls back to
            the whole expression without nltk data).
        spatial_rescore: add the spatial bias and re-sort the predictions.
        topk: keep only the ``topk`` best predictions (by detector score) before re-scoring; None
            keeps all ``max_per_img`` (LLMDet).
        weight, offset: bias per matched direction = ``weight * preference + offset`` (0.7, 1.0).
        match: ``'substring'`` (LLMDet) or ``'word'`` (words starting with a spatial word).
        words: direction -> spatial words; default :data:`LLMDET_SPATIAL_WORDS` (add e.g.
            ``'lower'`` to ``'bottom'`` to extend it).
        all_captions: treat every caption (``str`` text) sample as REC, e.g. for RefExp evaluation.
    """
    first_noun_phrase: bool = True
    spatial_rescore: bool = True
    topk: Optional[int] = None
    weight: float = 0.7
    offset: float = 1.0
    match: str = 'substring'
    words: Optional[Dict[str, Sequence[str]]] = None
    all_captions: bool = False

    def __post_init__(self):
        if self.match not in MATCH_MODES:
            raise ValueError(f'test_cfg.rec_heuristic.match must be one of {MATCH_MODES}, '
                             f'got {self.match!r}')
        if self.topk is not None and int(self.topk) < 1:
            raise ValueError(f'test_cfg.rec_heuristic.topk must be >= 1 or None, got {self.topk!r}')
        if self.words is not None:
            bad = sorted(set(self.words) - set(DIRECTIONS))
            if bad:
                raise ValueError(f'test_cfg.rec_heuristic.words: unknown directions {bad}; '
                                 f'expected keys among {DIRECTIONS}')

    @classmethod
    def from_cfg(cls, cfg: Union[None, bool, dict, 'RecHeuristic']) -> Optional['RecHeuristic']:
        """``test_cfg['rec_heuristic']`` -> a heuristic, or None when it is off (None / False)."""
        if cfg is None or cfg is False:
            return None
        if cfg is True:
            return cls()
        if isinstance(cfg, RecHeuristic):
            return cfg
        if not isinstance(cfg, dict):
            raise TypeError(f'test_cfg.rec_heuristic must be a dict, True/False or None, got '
                            f'{type(cfg).__name__}')
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(cfg) - known)
        if unknown:
            raise KeyError(f'test_cfg.rec_heuristic: unknown keys {unknown}; known: {sorted(known)}')
        return cls(**cfg)

    def applies(self, metainfo: dict, test_cfg: dict) -> bool:
        """Whether a sample is a REC sample (a ``str`` text and ``rec`` / ``rec_top1`` /
        ``all_captions``)."""
        if not isinstance(metainfo.get('text'), str):
            return False
        return bool(metainfo.get('rec', False)) or bool(test_cfg.get('rec_top1')) or \
            self.all_captions

    def entity_spans(self, expression: str, default: Spans) -> Spans:
        """The entity spans to score: the first noun phrase's occurrences, else ``default``."""
        if not self.first_noun_phrase:
            return default
        return first_phrase_spans(expression) or default

    def rescore(self, pred: InstanceData, metainfo: dict, top1: bool = False) -> InstanceData:
        """Re-score and re-sort one image's predictions.

        ``pred``: ``bboxes [K, 4]`` pixel xyxy in ``ori_shape``, ``scores [K]`` (+ any per-box
        fields, permuted alike). Labels are set to 0 (the expression is one object; the first
        noun phrase may occur several times). Returns ``[min(K, topk)]`` boxes, or ``[1]`` when
        ``top1``.
        """
        order = pred.scores.argsort(descending=True, stable=True)
        if self.topk is not None:
            order = order[:int(self.topk)]
        pred = pred[order]
        if 'labels' in pred:
            pred.labels = torch.zeros_like(pred.labels)
        if self.spatial_rescore and len(pred):
            directions = spatial_directions(metainfo['text'], self.words, self.match)
            if directions:
                shape = metainfo.get('ori_shape', metainfo.get('img_shape'))
                if shape is None:
                    raise KeyError('rec_heuristic: the sample has neither ori_shape nor img_shape '
                                   'in its metainfo')
                scores = pred.scores + spatial_bias(pred.bboxes, directions, shape, self.weight,
                                                    self.offset)
                pred = pred[scores.argsort(descending=True, stable=True)]
                pred.scores = scores.sort(descending=True, stable=True)[0]
        return pred[:1] if top1 else pred
