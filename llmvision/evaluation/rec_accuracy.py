"""REC accuracy: share of expressions whose chosen box overlaps the ground truth enough.

Accuracy = hits / expressions, a hit being IoU(chosen, GT) > ``iou_thr`` (``>=`` with
``inclusive=True``); an expression without a chosen box (zero candidates) is a miss. Also the
two reference choosers: the detector's top box and the oracle (best candidate: upper bound).
"""
from typing import Dict, Optional, Sequence, Tuple

import torch

from llmvision.structures import box_iou
from llmvision.structures.candidates import CandidateSet, fallback_choice


def best_candidate(blocks: Sequence[CandidateSet], gt_xyxy) -> Tuple[Optional[Tuple[int, int]], float]:
    """``((block, box), iou)`` of the candidate with the highest IoU to ``gt_xyxy`` ``[4]``;
    ``(None, 0.0)`` without candidates. Ties go to the first in prompt order."""
    gt = torch.as_tensor(gt_xyxy, dtype=torch.float32).reshape(1, 4)
    best, best_iou = None, -1.0
    for bi, b in enumerate(blocks):
        if not len(b):
            continue
        ious = box_iou(b.bboxes, gt)[:, 0]
        j = int(ious.argmax())
        if float(ious[j]) > best_iou:
            best, best_iou = (bi, j), float(ious[j])
    return best, max(best_iou, 0.0)


def iou_passes(iou: float, thr: float, inclusive: bool) -> bool:
    """``iou >= thr`` if ``inclusive`` else ``iou > thr``."""
    return iou >= thr if inclusive else iou > thr


def choice_box(blocks: Sequence[CandidateSet], choice) -> Optional[torch.Tensor]:
    """``(block, box)`` -> that box ``[4]`` (``None`` for no choice)."""
    return None if choice is None else blocks[choice[0]].bboxes[choice[1]]


def top_candidate_box(blocks: Sequence[CandidateSet]) -> Optional[torch.Tensor]:
    """Detector-only baseline: the top-scored box of the first non-empty block (``[4]``)."""
    return choice_box(blocks, fallback_choice(blocks))


def oracle_box(blocks: Sequence[CandidateSet], gt_xyxy) -> Optional[torch.Tensor]:
    """Upper bound: the candidate with the highest IoU to the ground truth (``[4]``)."""
    return choice_box(blocks, best_candidate(blocks, gt_xyxy)[0])


def rec_accuracy(chosen: Sequence[Optional[torch.Tensor]], gt_boxes: Sequence, iou_thr: float = 0.5,
                 inclusive: bool = False) -> Dict[str, float]:
    """Accuracy of chosen boxes (each ``[4]`` pixel xyxy or ``None``) against GT boxes ``[4]``.

    Returns ``dict(accuracy, hits, total, no_box)``.
    """
    if len(chosen) != len(gt_boxes):
        raise ValueError(f'rec_accuracy: {len(chosen)} choices for {len(gt_boxes)} ground truths')
    hits = no_box = 0
    for box, gt in zip(chosen, gt_boxes):
        if box is None or torch.as_tensor(box).numel() == 0:
            no_box += 1
            continue
        iou = float(box_iou(torch.as_tensor(box, dtype=torch.float32).reshape(1, 4),
                            torch.as_tensor(gt, dtype=torch.float32).reshape(1, 4))[0, 0])
        hits += iou_passes(iou, iou_thr, inclusive)
    total = len(chosen)
    return dict(accuracy=hits / total if total else 0.0, hits=hits, total=total, no_box=no_box)
