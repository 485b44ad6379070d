"""One block of REC candidate boxes from a single source (detector, VLM, cache file).

A :class:`CandidateSet` is what every candidate source returns and what the prompt
serializer, the fine-tuning data builder and the selector consume. Boxes are pixel xyxy in
the original image (the API-boundary convention of ``llmvision.structures.boxes``).
"""
from dataclasses import dataclass, field
from typing import List, Optional, Sequence, Tuple

import torch


@dataclass
class CandidateSet:
    """Candidates of one source for one (image, expression) sample.

    Attributes:
        source: name of the producer (``'grounding_dino'``, ``'florence2'``, ...).
        bboxes: ``[N, 4]`` float pixel xyxy (``N`` may be 0).
        labels: ``N`` label strings (category names or phrases).
        scores: ``[N]`` float confidences, or ``None`` when the source gives none.
    """
    source: str
    bboxes: torch.Tensor
    labels: List[str] = field(default_factory=list)
    scores: Optional[torch.Tensor] = None

    def __post_init__(self):
        self.bboxes = torch.as_tensor(self.bboxes, dtype=torch.float32).reshape(-1, 4) \
            if len(self.bboxes) else torch.zeros(0, 4)
        n = self.bboxes.shape[0]
        self.labels = [str(x) for x in self.labels]
        if len(self.labels) != n:
            raise ValueError(f'CandidateSet({self.source!r}): {n} boxes but {len(self.labels)} labels')
        if self.scores is not None:
            self.scores = torch.as_tensor(self.scores, dtype=torch.float32).reshape(-1)
            if self.scores.numel() != n:
                raise ValueError(
                    f'CandidateSet({self.source!r}): {n} boxes but {self.scores.numel()} scores')

    def __len__(self) -> int:
        return self.bboxes.shape[0]

    def subset(self, index: Sequence[int]) -> 'CandidateSet':
        """Candidates at ``index`` (a list of positions), in that order."""
        idx = torch.as_tensor(list(index), dtype=torch.long)
        return CandidateSet(self.source, self.bboxes[idx] if len(idx) else torch.zeros(0, 4),
                            [self.labels[i] for i in idx.tolist()],
                            None if self.scores is None else self.scores[idx])

    def to_dict(self) -> dict:
        """JSON-ready dict: ``source``, ``bboxes`` (lists), ``labels``, ``scores`` (or absent)."""
        out = dict(source=self.source, bboxes=[[round(float(v), 2) for v in b] for b in self.bboxes],
                   labels=list(self.labels))
        if self.scores is not None:
            out['scores'] = [round(float(s), 4) for s in self.scores]
        return out

    @classmethod
    def from_dict(cls, d: dict, default_source: str = 'unknown', where: str = '') -> 'CandidateSet':
        """Inverse of :meth:`to_dict`; ``where`` (``'file:line'``) is named in errors."""
        try:
            boxes = d['bboxes']
        except KeyError:
            raise KeyError(f'{where}: candidate record has no "bboxes" key') from None
        if not isinstance(boxes, list) or any(not isinstance(b, (list, tuple)) or len(b) != 4
                                              for b in boxes):
            raise ValueError(f'{where}: "bboxes" must be a list of [x1, y1, x2, y2] lists')
        labels = d.get('labels', [''] * len(boxes))
        try:
            return cls(str(d.get('source', default_source)), torch.tensor(boxes, dtype=torch.float32)
                       if boxes else torch.zeros(0, 4), labels, d.get('scores'))
        except ValueError as e:
            raise ValueError(f'{where}: {e}') from None

    @staticmethod
    def concat(sets: Sequence['CandidateSet'], source: str) -> 'CandidateSet':
        """One set holding all boxes of ``sets`` (scores kept only if every set has them)."""
        boxes = [s.bboxes for s in sets if len(s)]
        scores = None
        if all(s.scores is not None for s in sets):
            scores = torch.cat([s.scores for s in sets]) if sets else torch.zeros(0)
        return CandidateSet(source, torch.cat(boxes) if boxes else torch.zeros(0, 4),
                            [lab for s in sets for lab in s.labels], scores)


def clip_candidates(cands: CandidateSet, img_hw, min_size: float = 1.0):
    """Clip boxes to the image ``img_hw=(H, W)`` and drop those left thinner than ``min_size`` px.

    Returns:
        ``(CandidateSet, num_dropped)``: the kept candidates (original order) and how many
        boxes fell (almost) entirely outside the image.
    """
    from llmvision.structures import clip_xyxy
    if not len(cands):
        return cands, 0
    boxes = clip_xyxy(cands.bboxes, img_hw)
    keep = ((boxes[:, 2] - boxes[:, 0]) >= min_size) & ((boxes[:, 3] - boxes[:, 1]) >= min_size)
    idx = keep.nonzero().flatten().tolist()
    out = cands.subset(idx)
    out.bboxes = boxes[keep]
    return out, int((~keep).sum())


def fallback_choice(blocks) -> Optional[Tuple[int, int]]:
    """The detector's top box as ``(block, box)``: the highest score of the first non-empty
    block when it has scores, else its first box; ``None`` when there are no candidates."""
    if isinstance(blocks, CandidateSet):
        blocks = [blocks]
    for bi, block in enumerate(blocks):
        if len(block):
            j = 0 if block.scores is None else int(block.scores.argmax())
            return bi, j
    return None
