"""Synthetic candidates for tests: what a good detector would propose, without a detector.

All ground-truth objects of the image (boxes jittered by a few percent, labelled with their
category name) plus a few distractor boxes, shuffled, with random scores. Deterministic per
record key and seed.
"""
import zlib
from typing import Optional, Sequence, Tuple

import numpy as np
import torch

from llmvision.registry import TASK_UTILS
from llmvision.structures.candidates import CandidateSet


@TASK_UTILS.register_module()
class SyntheticCandidateSource:
    """Candidates from a record's ``image_anns`` (see :mod:`.refer_records`).

    Args:
        name: source name in prompts.
        jitter: box noise, std as a fraction of the box width / height.
        num_distractors: inclusive range of extra boxes per image.
        distractor_labels: ``'absent'`` (names of categories not in the image: clean false
            positives) or ``'any'`` (any category name, present ones included).
        category_names: the label vocabulary for distractors (default: categories of the record).
        seed: mixed with the record key.
    """

    def __init__(self, name: str = 'synthetic', jitter: float = 0.03,
                 num_distractors: Tuple[int, int] = (0, 2), distractor_labels: str = 'absent',
                 category_names: Optional[Sequence[str]] = None, seed: int = 0):
        if distractor_labels not in ('absent', 'any'):
            raise ValueError(f"distractor_labels must be 'absent' or 'any', got {distractor_labels!r}")
        self.name, self.jitter, self.seed = name, jitter, seed
        self.num_distractors = tuple(num_distractors)
        self.distractor_labels = distractor_labels
        self.category_names = list(category_names) if category_names else None

    def __call__(self, record: dict) -> CandidateSet:
        rng = np.random.default_rng([self.seed, zlib.crc32(str(record['key']).encode())])
        h, w = float(record['height']), float(record['width'])
        boxes, labels, scores = [], [], []
        for ann in record['image_anns']:
            x1, y1, x2, y2 = ann['bbox']
            bw, bh = x2 - x1, y2 - y1
            noise = rng.normal(0, self.jitter, 4) * np.array([bw, bh, bw, bh])
            boxes.append([x1 + noise[0], y1 + noise[1], x2 + noise[2], y2 + noise[3]])
            labels.append(ann['category'])
            scores.append(rng.uniform(0.35, 0.95))
        present = {a['category'] for a in record['image_anns']}
        vocab = self.category_names or sorted(present) or ['object']
        if self.distractor_labels == 'absent':
            vocab = [v for v in vocab if v not in present] or vocab
        for _ in range(int(rng.integers(self.num_distractors[0], self.num_distractors[1] + 1))):
            s = rng.uniform(0.08, 0.3) * min(h, w)
            x, y = rng.uniform(0, w - s), rng.uniform(0, h - s)
            boxes.append([x, y, x + s, y + s * rng.uniform(0.7, 1.3)])
            labels.append(vocab[int(rng.integers(len(vocab)))])
            scores.append(rng.uniform(0.05, 0.9))
        order = torch.as_tensor(rng.permutation(len(boxes)), dtype=torch.long)
        bt = torch.tensor(np.array(boxes, dtype=np.float32).reshape(-1, 4))[order] \
            if boxes else torch.zeros(0, 4)
        bt[:, 0::2] = bt[:, 0::2].clamp(0, w)
        bt[:, 1::2] = bt[:, 1::2].clamp(0, h)
        return CandidateSet(self.name, bt, [labels[i] for i in order.tolist()],
                            torch.tensor(scores, dtype=torch.float32)[order] if boxes else None)
