"""One accuracy table per split: detector-only, zero-shot / fine-tuned LLM, oracle, ensembles.

A *method* maps a list of selector samples (dicts with ``candidates`` blocks, ``expression``,
``gt_bbox``, see :func:`llmvision.datasets.rec.build_selector_samples`) to one chosen box
``[4]`` (or ``None``) per sample. :func:`accuracy_table` scores each method with
:func:`rec_accuracy`, overall and on the subset flagged ``needs_reasoning`` when present.
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch

from .accuracy import oracle_box, rec_accuracy, top_candidate_box

Method = Callable[[Sequence[dict]], List[Optional[torch.Tensor]]]


def detector_only(samples: Sequence[dict]) -> List[Optional[torch.Tensor]]:
    """The detector's top box (first source block)."""
    return [top_candidate_box(s['candidates']) for s in samples]


def oracle(samples: Sequence[dict]) -> List[Optional[torch.Tensor]]:
    """The best candidate (upper bound of any selector)."""
    return [oracle_box(s['candidates'], s['gt_bbox']) for s in samples]


def llm_selector(model, batch_size: int = 16, pack: Callable = None) -> Method:
    """Method running ``model.predict`` (a :class:`RECSelector`) in batches of ``batch_size``.

    ``pack`` turns a sample into ``dict(inputs, data_samples)`` (default:
    :func:`llmvision.datasets.rec.pack_selector_sample`).
    """
    if pack is None:
        from llmvision.datasets.rec import pack_selector_sample as pack

    def run(samples):
        was_training = model.training
        model.eval()
        boxes = []
        for i in range(0, len(samples), batch_size):
            packed = [pack(s)['data_samples'] for s in samples[i:i + batch_size]]
            for out in model.predict(packed):
                b = out.pred_instances.bboxes
                boxes.append(b[0] if len(b) else None)
        model.train(was_training)
        return boxes
    return run


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
