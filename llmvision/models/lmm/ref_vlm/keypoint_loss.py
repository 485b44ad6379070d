"""Keypoint losses of the ``<REF>`` keypoint decoder: L1 (x2), OKS (x2), visibility BCE (x1).

Coordinates are normalized to the model input; a keypoint counts for L1 / OKS when it is labelled
(COCO ``v > 0``: 1 occluded, 2 visible); the visibility target is ``v == 2`` for all ``K`` slots.
OKS follows COCO: ``exp(-d^2 / (2 * area * (2 * sigma)^2))`` averaged over the labelled keypoints, with
``area`` the target box area (normalized units).
"""
from typing import Dict

import torch
import torch.nn.functional as F


def oks(pred_xy: torch.Tensor, gt: torch.Tensor, area: torch.Tensor, sigmas: torch.Tensor,
        eps: float = 1e-6) -> torch.Tensor:
    """Object keypoint similarity ``[N]`` of ``pred_xy [N, K, 2]`` against ``gt [N, K, 3]`` (x, y, v),
    ``area [N]``, ``sigmas [K]``; an instance without labelled keypoints gets 0."""
    labelled = (gt[..., 2] > 0).float()
    d2 = ((pred_xy.float() - gt[..., :2].float()) ** 2).sum(-1)
    e = d2 / (2 * (area[:, None].float() + eps) * (2 * sigmas.float()) ** 2)
    return (torch.exp(-e) * labelled).sum(-1) / labelled.sum(-1).clamp(min=1)


def keypoint_loss_terms(pred_xy: torch.Tensor, vis_logits: torch.Tensor, target: torch.Tensor,
                        target_boxes: torch.Tensor, valid: torch.Tensor, sigmas: torch.Tensor
                        ) -> Dict[str, torch.Tensor]:
    """Mean keypoint L1, OKS loss (``1 - OKS``) and visibility BCE over the valid queries.

    Args:
        pred_xy: ``[B, Q, K, 2]`` normalized; vis_logits: ``[B, Q, K]``.
        target: ``[B, Q, K, 3]`` matched (x, y, v); target_boxes: ``[B, Q, 4]`` matched cxcywh.
        valid: ``[B, Q]`` bool. sigmas: ``[K]``.
    """
    p, logit, t, box = pred_xy[valid].float(), vis_logits[valid].float(), target[valid].float(), target_boxes[valid]
    zero = pred_xy.sum() * 0.0 + vis_logits.sum() * 0.0
    if p.shape[0] == 0:
        return {'kpt_l1': zero, 'kpt_oks': zero, 'kpt_vis': zero}
    labelled = t[..., 2] > 0
    n_lab = labelled.sum().clamp(min=1)
    l1 = ((p - t[..., :2]).abs().sum(-1) * labelled).sum() / n_lab
    has = labelled.any(-1)
    area = box[:, 2].float() * box[:, 3].float()
    o = oks(p, t, area, sigmas.to(p.device))
    oks_loss = (1 - o)[has].mean() if has.any() else zero
    vis = F.binary_cross_entropy_with_logits(logit, (t[..., 2] == 2).float())
    return {'kpt_l1': l1, 'kpt_oks': oks_loss, 'kpt_vis': vis}
