"""Box losses of the ``<REF>`` decoders: L1 (x5) + GIoU (x2) on normalized boxes after in-group matching."""
from typing import Dict

import torch

from llmvision.structures.boxes import cxcywh_to_xyxy, generalized_box_iou

from .matching import match_within_groups


def assign_targets(pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, groups: torch.Tensor, matcher) -> torch.Tensor:
    """Per-sample in-group matching: ``[B, Q, 4]`` preds / targets, groups ``[B, Q]`` -> ``[B, Q]`` long,
    the target row of each query (-1 on padding)."""
    return torch.stack([match_within_groups(p.detach().float(), t.float(), g, matcher)
                        for p, t, g in zip(pred_boxes, gt_boxes, groups)])


def gather_matched(targets: torch.Tensor, assign: torch.Tensor) -> torch.Tensor:
    """``targets [B, Q, ...]`` reordered so that row ``q`` holds the target assigned to query ``q``
    (padding rows, ``assign == -1``, keep their own row)."""
    idx = torch.where(assign >= 0, assign, torch.arange(assign.shape[1], device=assign.device))
    return torch.stack([t[i] for t, i in zip(targets, idx)])


def box_loss_terms(pred: torch.Tensor, target: torch.Tensor, valid: torch.Tensor) -> Dict[str, torch.Tensor]:
    """Mean L1 and GIoU loss over the valid queries.

    Args:
        pred, target: ``[B, Q, 4]`` normalized cxcywh (target already matched).
        valid: ``[B, Q]`` bool.
    Returns ``{'l1', 'giou'}`` scalars (0 when nothing is valid, still in the graph).
    """
    p, t = pred[valid].float(), target[valid].float()
    if p.shape[0] == 0:
        zero = pred.sum() * 0.0
        return {'l1': zero, 'giou': zero}
    l1 = (p - t).abs().sum(-1).mean()
    giou = torch.diagonal(generalized_box_iou(cxcywh_to_xyxy(p), cxcywh_to_xyxy(t)))
    return {'l1': l1, 'giou': (1 - giou).mean()}
