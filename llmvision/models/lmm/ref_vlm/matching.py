"""Hungarian matching of ``<REF>`` predictions to targets inside each phrase's group of ``<REF>`` s.

A phrase with ``n`` ``<REF>`` s has ``n`` targets whose order is arbitrary (the objects of "red circles"), so
the ``n`` predictions are assigned to them one-to-one by L1 and GIoU cost (the matcher of
:mod:`llmvision.models.losses.hungarian_matcher` with its class cost switched off); different phrases never mix.
"""
import torch

from llmvision.models.losses.hungarian_matcher import HungarianMatcher


def group_matcher(l1_weight: float = 5.0, giou_weight: float = 2.0) -> HungarianMatcher:
    """The box matcher: L1 x ``l1_weight`` + GIoU x ``giou_weight``, no class cost."""
    return HungarianMatcher(cls_weight=0.0, l1_weight=l1_weight, giou_weight=giou_weight)


@torch.no_grad()
def match_within_groups(pred_boxes: torch.Tensor, gt_boxes: torch.Tensor, groups: torch.Tensor,
                        matcher: HungarianMatcher) -> torch.Tensor:
    """Target row of every query, matching only inside each group.

    Args:
        pred_boxes: ``[Q, 4]`` normalized cxcywh predictions of one sample.
        gt_boxes: ``[Q, 4]`` its targets (row ``i`` = the target written at the i-th ``<REF>``).
        groups: ``[Q]`` long group (phrase) id of each query; ``-1`` = padding (kept as -1).
    Returns:
        ``[Q]`` long: for query ``i`` the row of ``gt_boxes`` it is assigned to (a permutation inside each
        group), ``-1`` on padding.
    """
    assign = torch.full_like(groups, -1)
    for g in groups.unique().tolist():
        if g < 0:
            continue
        idx = (groups == g).nonzero(as_tuple=True)[0]
        if idx.numel() == 1:
            assign[idx] = idx
            continue
        n = idx.numel()
        dummy_logits = pred_boxes.new_zeros(n, 1)
        dummy_maps = pred_boxes.new_ones(n, 1)
        rows, cols = matcher(dummy_logits, pred_boxes[idx], gt_boxes[idx], dummy_maps)
        assign[idx[rows]] = idx[cols]
    return assign
