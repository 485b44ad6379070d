"""One accuracy table per split: detector-only, zero-shot / fine-tuned LLM, oracle, ensembles.

A *method* maps a list of selector samples (dicts with ``candidates`` blocks, ``expression``,
``gt_bbox``, see :func:`llmvision.datasets.rec.build_selector_samples`) to one chosen box
``[4]`` (or ``None``) per sample (the LLM selector as a method: :func:`llmvision.apis.llm_selector`).
:func:`accuracy_table` scores each method with :func:`rec_accuracy`, overall and on the subset flagged
``needs_reasoning`` when present.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .rec_accuracy import oracle_box, rec_accuracy, top_candidate_box

Method = Callable[[Sequence[dict]], List[Optional[torch.Tensor]]]


def detector_only(samples: Sequence[dict]) -> List[Optional[torch.Tensor]]:
    """The detector's top box (first source block)."""
    return [top_candidate_box(s['candidates']) for s in samples]


def oracle(samples: Sequence[dict]) -> List[Optional[torch.Tensor]]:
    """The best candidate (upper bound of any selector)."""
    return [oracle_box(s['candidates'], s['gt_bbox']) for s in samples]


def accuracy_table(samples: Sequence[dict], methods: Dict[str, Method], iou_thr: float = 0.5,
                   inclusive: bool = False) -> List[dict]:
    """Rows ``dict(method, accuracy, hits, total, no_box, reasoning_accuracy, reasoning_total)``."""
    gts = [s['gt_bbox'] for s in samples]
    hard = [i for i, s in enumerate(samples) if s.get('needs_reasoning')]
    rows = []
    for name, method in methods.items():
        boxes = method(samples)
        row = dict(method=name, **rec_accuracy(boxes, gts, iou_thr, inclusive))
        sub = rec_accuracy([boxes[i] for i in hard], [gts[i] for i in hard], iou_thr, inclusive)
        row.update(reasoning_accuracy=sub['accuracy'], reasoning_total=sub['total'])
        rows.append(row)
    return rows


def format_table(split: str, rows: Sequence[dict], iou_thr: float = 0.5,
                 inclusive: bool = False) -> str:
    """Markdown table of :func:`accuracy_table` rows (accuracies in percent)."""
    op = '>=' if inclusive else '>'
    lines = [f'### {split} (accuracy: IoU {op} {iou_thr})', '',
             '| method | accuracy | hits / total | no box | needs reasoning |',
             '|---|---|---|---|---|']
    for r in rows:
        reason = f"{100 * r['reasoning_accuracy']:.1f} (n={r['reasoning_total']})" \
            if r['reasoning_total'] else '-'
        lines.append(f"| {r['method']} | {100 * r['accuracy']:.1f} | {r['hits']} / {r['total']} | "
                     f"{r['no_box']} | {reason} |")
    return '\n'.join(lines) + '\n'
