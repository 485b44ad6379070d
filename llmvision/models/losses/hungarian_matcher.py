"""One-to-one Hungarian matching of query predictions to ground truth for grounding detectors.

The cost of query ``q`` for gt ``g`` is

    cls_weight * focal_cost(q, g) + l1_weight * |box_q - box_g|_1 - giou_weight * GIoU(box_q, box_g)

with boxes in normalized cxcywh (L1) / xyxy (GIoU). The class cost compares the query's token logits
with the gt's positive map (multi-hot over text tokens), using only real text tokens:

- ``cls_cost_mode='sum'`` (mmdet ``BinaryFocalLossCost``, used by MM-Grounding-DINO / LLMDet):
  ``sum_t pos(q,t) * y(g,t) + neg(q,t) * (1 - y(g,t))``;
- ``cls_cost_mode='mean'`` (transformers ``GroundingDinoHungarianMatcher``):
  ``sum_t (pos(q,t) - neg(q,t)) * y(g,t) / sum_t y(g,t)``;

where ``pos = -alpha * (1-p)^gamma * log(p + eps)`` and ``neg = -(1-alpha) * p^gamma * log(1-p + eps)``.
The assignment is solved by ``scipy.optimize.linear_sum_assignment`` on CPU.
"""
from typing import Optional, Tuple

import torch
from scipy.optimize import linear_sum_assignment

from llmvision.registry import TASK_UTILS
from llmvision.structures.boxes import cxcywh_to_xyxy, generalized_box_iou

_MODES = ('sum', 'mean')


@TASK_UTILS.register_module()
class HungarianMatcher:
    """Hungarian matcher with focal class cost on text tokens, L1 and GIoU box costs.

    Args:
        cls_weight, l1_weight, giou_weight: weights of the three costs.
        alpha, gamma: focal parameters of the class cost.
        cls_cost_mode: ``'sum'`` (mmdet) or ``'mean'`` (transformers), see the module docstring.
        eps: added inside the logs of the class cost.
    """

    def __init__(self, cls_weight: float = 2.0, l1_weight: float = 5.0, giou_weight: float = 2.0,
                 alpha: float = 0.25, gamma: float = 2.0, cls_cost_mode: str = 'sum',
                 eps: float = 1e-12):
        if cls_cost_mode not in _MODES:
            raise ValueError(f'HungarianMatcher: cls_cost_mode must be one of {_MODES}, '
                             f'got {cls_cost_mode!r}')
        self.cls_weight = float(cls_weight)
        self.l1_weight = float(l1_weight)
        self.giou_weight = float(giou_weight)
        self.alpha = float(alpha)
        self.gamma = float(gamma)
        self.cls_cost_mode = cls_cost_mode
        self.eps = float(eps)

    def class_cost(self, cls_logits: torch.Tensor, positive_maps: torch.Tensor,
                   text_token_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Focal class cost ``[Q, n]`` from logits ``[Q, T]`` and positive maps ``[n, T]``.

        ``text_token_mask`` ``[T]`` bool (True = real token) restricts the cost to real tokens;
        ``None`` uses every token.
        """
        logits = cls_logits.float()
        target = positive_maps.float()
        if text_token_mask is not None:
            keep = text_token_mask.bool()
            logits, target = logits[:, keep], target[:, keep]
        prob = logits.sigmoid()
        neg = -(1 - prob + self.eps).log() * (1 - self.alpha) * prob.pow(self.gamma)
        pos = -(prob + self.eps).log() * self.alpha * (1 - prob).pow(self.gamma)
        if self.cls_cost_mode == 'sum':
            return pos @ target.t() + neg @ (1 - target).t()
        weights = target / target.sum(-1, keepdim=True).clamp(min=1e-6)
        return (pos - neg) @ weights.t()

    def cost_matrix(self, cls_logits: torch.Tensor, bbox_pred: torch.Tensor, gt_bboxes: torch.Tensor,
                    gt_positive_maps: torch.Tensor,
                    text_token_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Total weighted cost ``[Q, n]``.

        Args:
            cls_logits: ``[Q, T]`` token logits of one image (padded tokens may be ``-inf``).
            bbox_pred: ``[Q, 4]`` predicted normalized cxcywh.
            gt_bboxes: ``[n, 4]`` gt normalized cxcywh.
            gt_positive_maps: ``[n, T]`` float multi-hot over tokens.
            text_token_mask: ``[T]`` bool, True = real token (or None).
        """
        pred = bbox_pred.float()
        gt = gt_bboxes.float()
        cost = self.cls_weight * self.class_cost(cls_logits, gt_positive_maps, text_token_mask)
        cost = cost + self.l1_weight * torch.cdist(pred, gt, p=1)
        cost = cost - self.giou_weight * generalized_box_iou(cxcywh_to_xyxy(pred), cxcywh_to_xyxy(gt))
        return cost

    @torch.no_grad()
    def __call__(self, cls_logits: torch.Tensor, bbox_pred: torch.Tensor, gt_bboxes: torch.Tensor,
                 gt_positive_maps: torch.Tensor, text_token_mask: Optional[torch.Tensor] = None
                 ) -> Tuple[torch.Tensor, torch.Tensor]:
        """Match one image. Shapes as in :meth:`cost_matrix`.

        Returns:
            ``(query_idx [k], gt_idx [k])`` long tensors on ``bbox_pred.device``, ``k = min(Q, n)``,
            sorted by query index.
        """
        num_queries, num_gts = bbox_pred.shape[0], gt_bboxes.shape[0]
        device = bbox_pred.device
        if num_queries == 0 or num_gts == 0:
            empty = torch.zeros(0, dtype=torch.long, device=device)
            return empty, empty.clone()
        if gt_positive_maps.shape[0] != num_gts:
            raise ValueError(f'HungarianMatcher: {num_gts} gt boxes but {gt_positive_maps.shape[0]} '
                             'positive maps')
        cost = self.cost_matrix(cls_logits, bbox_pred, gt_bboxes, gt_positive_maps, text_token_mask)
        # a non-finite cost (degenerate box, NaN logits) would make scipy raise: make it the worst
        big = torch.finfo(torch.float32).max / 4
        cost = torch.nan_to_num(cost, nan=big, posinf=big, neginf=big).cpu().numpy()
        rows, cols = linear_sum_assignment(cost)
        return (torch.as_tensor(rows, dtype=torch.long, device=device),
                torch.as_tensor(cols, dtype=torch.long, device=device))
