"""Training losses of Grounding-DINO (MM-Grounding-DINO / LLMDet): decoder layers, encoder, denoising.

Per set of predictions (one decoder layer, the encoder top-k proposals, or the denoising part of one
layer), given an assignment query -> gt (Hungarian for the matching queries, known for denoising):

- ``loss_cls``: sigmoid focal loss over every (query, real text token) pair; the target row of an
  assigned query is its gt's positive map, every other row is zero. Normalized by the number of
  assigned queries in the batch (averaged across ranks when ``torch.distributed`` is initialised,
  clamped to >= 1).
- ``loss_bbox``: L1 on normalized cxcywh of the assigned queries, same normalizer.
- ``loss_iou``: ``1 - GIoU`` on xyxy of the assigned queries, same normalizer.

Denoising: the positive query of gt ``t`` in group ``g`` is assigned to ``t`` (known, no matching); negative
and padding denoising queries get all-zero class targets and no box loss (as in mmdet's DINO).
Images without gt contribute all-zero class targets; with no gt at all the box losses are exact zeros
that are still connected to the predictions (DDP sees every parameter used).
"""
from typing import Dict, List, Optional, Sequence, Tuple, Union

import torch
import torch.distributed as dist
import torch.nn as nn
from torchvision.ops import generalized_box_iou_loss

from llmvision.registry import MODELS
from llmvision.structures.boxes import cxcywh_to_xyxy

from .focal_loss import sigmoid_focal_loss
from .hungarian_matcher import HungarianMatcher

Assignment = Tuple[torch.Tensor, torch.Tensor]


def _reduce_mean(value: torch.Tensor) -> torch.Tensor:
    """Mean of ``value`` over ranks (identity when not distributed)."""
    if not (dist.is_available() and dist.is_initialized()):
        return value
    value = value.clone()
    dist.all_reduce(value.div_(dist.get_world_size()), op=dist.ReduceOp.SUM)
    return value


def _pad_last(x: torch.Tensor, length: int, what: str) -> torch.Tensor:
    """Zero/False-pad the last dim of ``x`` to ``length``; error when it is longer."""
    if x.shape[-1] > length:
        raise ValueError(f'GroundingDINOLoss: {what} has {x.shape[-1]} text positions but the class '
                         f'scores have {length}')
    if x.shape[-1] == length:
        return x
    pad = x.new_zeros(*x.shape[:-1], length - x.shape[-1])
    return torch.cat([x, pad], dim=-1)


@MODELS.register_module()
class GroundingDINOLoss(nn.Module):
    """Hungarian + denoising losses of Grounding-DINO over text-token logits.

    Args:
        num_classes: max text length ``T`` (256); class scores may not be wider.
        matcher: a :class:`HungarianMatcher` or its kwargs (``cls_weight, l1_weight, giou_weight,
            alpha, gamma, cls_cost_mode``).
        loss_cls_weight, loss_bbox_weight, loss_iou_weight: weights of focal, L1 and GIoU losses.
        focal_alpha, focal_gamma: focal loss parameters.
    """

    def __init__(self, num_classes: int = 256,
                 matcher: Union[dict, HungarianMatcher, None] = None,
                 loss_cls_weight: float = 1.0, loss_bbox_weight: float = 5.0,
                 loss_iou_weight: float = 2.0, focal_alpha: float = 0.25, focal_gamma: float = 2.0):
        super().__init__()
        self.num_classes = int(num_classes)
        if matcher is None:
            matcher = HungarianMatcher()
        elif isinstance(matcher, dict):
            matcher = dict(matcher)
            matcher_type = matcher.pop('type', HungarianMatcher)
            if matcher_type not in (HungarianMatcher, 'HungarianMatcher'):
                raise ValueError(f'GroundingDINOLoss: matcher type must be HungarianMatcher, '
                                 f'got {matcher_type!r}')
            matcher = HungarianMatcher(**matcher)
        self.matcher = matcher
        self.loss_cls_weight = float(loss_cls_weight)
        self.loss_bbox_weight = float(loss_bbox_weight)
        self.loss_iou_weight = float(loss_iou_weight)
        self.focal_alpha = float(focal_alpha)
        self.focal_gamma = float(focal_gamma)

    # ------------------------------------------------------------------ inputs
    def _prepare_gt(self, batch_gt: Sequence[dict], num_tokens: int, device) -> List[dict]:
        out = []
        for i, gt in enumerate(batch_gt):
            for key in ('bboxes', 'positive_maps'):
                if key not in gt:
                    raise KeyError(f'GroundingDINOLoss: batch_gt[{i}] has no key {key!r} '
                                   f'(keys: {sorted(gt)})')
            boxes, maps = gt['bboxes'], gt['positive_maps']
            if boxes.dim() != 2 or boxes.shape[-1] != 4 or maps.dim() != 2 \
                    or maps.shape[0] != boxes.shape[0]:
                raise ValueError(f'GroundingDINOLoss: batch_gt[{i}] needs bboxes [n, 4] and '
                                 f'positive_maps [n, T]; got {tuple(boxes.shape)} and '
                                 f'{tuple(maps.shape)}')
            maps = _pad_last(maps.to(device=device, dtype=torch.float32), num_tokens,
                             f'batch_gt[{i}]["positive_maps"]')
            out.append(dict(bboxes=boxes.to(device=device, dtype=torch.float32), positive_maps=maps))
        return out

    # --------------------------------------------------------------- assignment
    def match(self, cls_scores: torch.Tensor, bbox_preds: torch.Tensor, text_token_mask: torch.Tensor,
              batch_gt: Sequence[dict]) -> List[Assignment]:
        """Hungarian assignment per image: ``cls_scores [B, Q, T]``, ``bbox_preds [B, Q, 4]``,
        ``text_token_mask [B, T]`` -> list of ``(query_idx [k], gt_idx [k])``."""
        cls_scores, bbox_preds = cls_scores.detach(), bbox_preds.detach()
        return [self.matcher(cls_scores[b], bbox_preds[b], gt['bboxes'], gt['positive_maps'],
                             text_token_mask[b]) for b, gt in enumerate(batch_gt)]

    @staticmethod
    def dn_assign(batch_gt: Sequence[dict], dn_meta: Dict[str, int], device) -> List[Assignment]:
        """Known assignment of the positive denoising queries (layout of :class:`CdnQueryGenerator`)."""
        num_dn = int(dn_meta['num_denoising_queries'])
        num_groups = int(dn_meta['num_denoising_groups'])
        max_num = num_dn // (2 * num_groups) if num_groups > 0 else 0
        out = []
        for gt in batch_gt:
            n = gt['bboxes'].shape[0]
            if n > max_num:
                raise ValueError(f'GroundingDINOLoss: an image has {n} gts but dn_meta allows at most '
                                 f'{max_num} per group (dn_meta={dn_meta})')
            t = torch.arange(n, device=device)
            starts = torch.arange(num_groups, device=device) * 2 * max_num
            query_idx = (starts[:, None] + t[None, :]).reshape(-1)
            out.append((query_idx, t.repeat(num_groups)))
        return out

    # -------------------------------------------------------------------- loss
    def loss_from_assignment(self, cls_scores: torch.Tensor, bbox_preds: torch.Tensor,
                             text_token_mask: torch.Tensor, batch_gt: Sequence[dict],
                             assign: Sequence[Assignment], avg_factor: torch.Tensor
                             ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Weighted ``(loss_cls, loss_bbox, loss_iou)`` of one set of predictions.

        Args:
            cls_scores: ``[B, N, T]`` token logits; bbox_preds: ``[B, N, 4]`` sigmoid cxcywh.
            text_token_mask: ``[B, T]`` bool; batch_gt: prepared gts (positive maps padded to T).
            assign: per image ``(query_idx [k], gt_idx [k])``; avg_factor: scalar normalizer (>= 1).
        """
        batch_size, num_queries, num_tokens = cls_scores.shape
        targets = cls_scores.new_zeros(batch_size, num_queries, num_tokens, dtype=torch.float32)
        pred_boxes, gt_boxes = [], []
        for b, ((q_idx, g_idx), gt) in enumerate(zip(assign, batch_gt)):
            targets[b, q_idx] = gt['positive_maps'][g_idx]
            pred_boxes.append(bbox_preds[b, q_idx])
            gt_boxes.append(gt['bboxes'][g_idx])
        token_mask = text_token_mask[:, None, :].expand(batch_size, num_queries, num_tokens)
        loss_cls = sigmoid_focal_loss(cls_scores[token_mask].float(), targets[token_mask],
                                      self.focal_alpha, self.focal_gamma, reduction='sum')
        loss_cls = loss_cls / avg_factor
        pred_boxes = torch.cat(pred_boxes).float()
        gt_boxes = torch.cat(gt_boxes)
        if pred_boxes.shape[0] == 0:
            zero = bbox_preds.sum() * 0.0
            loss_bbox, loss_iou = zero, zero.clone()
        else:
            loss_bbox = (pred_boxes - gt_boxes).abs().sum() / avg_factor
            loss_iou = generalized_box_iou_loss(cxcywh_to_xyxy(pred_boxes), cxcywh_to_xyxy(gt_boxes),
                                                reduction='sum') / avg_factor
        return (self.loss_cls_weight * loss_cls, self.loss_bbox_weight * loss_bbox,
                self.loss_iou_weight * loss_iou)

    def _avg_factor(self, num_pos: int, like: torch.Tensor) -> torch.Tensor:
        value = _reduce_mean(torch.tensor(float(num_pos), device=like.device))
        return value.clamp(min=1.0)

    def forward(self, all_layers_cls_scores: torch.Tensor, all_layers_bbox_preds: torch.Tensor,
                enc_cls_scores: Optional[torch.Tensor], enc_bbox_preds: Optional[torch.Tensor],
                text_token_mask: torch.Tensor, batch_gt: Sequence[dict],
                dn_meta: Optional[Dict[str, int]] = None
                ) -> Tuple[Dict[str, torch.Tensor], List[Assignment]]:
        """All losses of one batch.

        Args:
            all_layers_cls_scores: ``[L, B, Ndn + Q, T]`` token logits (padded tokens may be -inf).
            all_layers_bbox_preds: ``[L, B, Ndn + Q, 4]`` sigmoid normalized cxcywh.
            enc_cls_scores: ``[B, Q, T]`` encoder proposal logits, or None (no encoder loss).
            enc_bbox_preds: ``[B, Q, 4]`` encoder proposal boxes, or None.
            text_token_mask: ``[B, T']`` bool, True = real token (``T' <= T``, padded with False).
            batch_gt: per image ``dict(bboxes=[n, 4] normalized cxcywh, positive_maps=[n, T''] float)``.
            dn_meta: ``dict(num_denoising_queries, num_denoising_groups)`` from
                :class:`CdnQueryGenerator`, or None when the tensors hold no denoising queries.

        Returns:
            ``(losses, last_layer_assign)``: a dict of scalar tensors (``loss_cls/bbox/iou`` of the last
            layer, ``d{i}.loss_*`` of the others, ``enc_loss_*``, ``dn_loss_*`` and ``d{i}.dn_loss_*``)
            and per image ``(query_idx [k], gt_idx [k])`` of the last layer over the matching queries
            (indices in ``[0, Q)``).
        """
        if all_layers_cls_scores.dim() != 4 or all_layers_bbox_preds.dim() != 4 \
                or all_layers_bbox_preds.shape[-1] != 4 \
                or all_layers_cls_scores.shape[:3] != all_layers_bbox_preds.shape[:3]:
            raise ValueError('GroundingDINOLoss: expected all_layers_cls_scores [L, B, N, T] and '
                             'all_layers_bbox_preds [L, B, N, 4]; got '
                             f'{tuple(all_layers_cls_scores.shape)} and '
                             f'{tuple(all_layers_bbox_preds.shape)}')
        num_layers, batch_size, num_all, num_tokens = all_layers_cls_scores.shape
        if num_tokens > self.num_classes:
            raise ValueError(f'GroundingDINOLoss: class scores have {num_tokens} text positions, more '
                             f'than num_classes={self.num_classes}')
        if len(batch_gt) != batch_size:
            raise ValueError(f'GroundingDINOLoss: {len(batch_gt)} gt entries for a batch of {batch_size}')
        device = all_layers_cls_scores.device
        text_token_mask = _pad_last(text_token_mask.to(device).bool(), num_tokens, 'text_token_mask')
        if text_token_mask.shape[0] != batch_size:
            raise ValueError(f'GroundingDINOLoss: text_token_mask has {text_token_mask.shape[0]} rows '
                             f'for a batch of {batch_size}')
        gts = self._prepare_gt(batch_gt, num_tokens, device)
        num_dn = int(dn_meta['num_denoising_queries']) if dn_meta is not None else 0
        if num_dn > num_all:
            raise ValueError(f'GroundingDINOLoss: dn_meta says {num_dn} denoising queries but the '
                             f'predictions hold only {num_all} queries')
        match_cls = all_layers_cls_scores[:, :, num_dn:]
        match_box = all_layers_bbox_preds[:, :, num_dn:]
        num_match = num_all - num_dn
        num_pos = sum(min(gt['bboxes'].shape[0], num_match) for gt in gts)
        avg = self._avg_factor(num_pos, all_layers_cls_scores)

        losses: Dict[str, torch.Tensor] = {}
        last_assign: List[Assignment] = []
        for layer in range(num_layers):
            assign = self.match(match_cls[layer], match_box[layer], text_token_mask, gts)
            values = self.loss_from_assignment(match_cls[layer], match_box[layer], text_token_mask,
                                               gts, assign, avg)
            prefix = '' if layer == num_layers - 1 else f'd{layer}.'
            for name, value in zip(('loss_cls', 'loss_bbox', 'loss_iou'), values):
                losses[prefix + name] = value
            last_assign = assign

        if enc_cls_scores is not None:
            if enc_bbox_preds is None:
                raise ValueError('GroundingDINOLoss: enc_cls_scores given without enc_bbox_preds')
            enc_mask = _pad_last(text_token_mask, enc_cls_scores.shape[-1], 'text_token_mask')
            enc_gts = [dict(gt, positive_maps=_pad_last(gt['positive_maps'], enc_cls_scores.shape[-1],
                                                        'positive_maps')) for gt in gts]
            enc_pos = sum(min(gt['bboxes'].shape[0], enc_cls_scores.shape[1]) for gt in gts)
            enc_avg = self._avg_factor(enc_pos, enc_cls_scores)
            assign = self.match(enc_cls_scores, enc_bbox_preds, enc_mask, enc_gts)
            values = self.loss_from_assignment(enc_cls_scores, enc_bbox_preds, enc_mask, enc_gts,
                                               assign, enc_avg)
            for name, value in zip(('loss_cls', 'loss_bbox', 'loss_iou'), values):
                losses['enc_' + name] = value

        if dn_meta is not None:
            dn_cls = all_layers_cls_scores[:, :, :num_dn]
            dn_box = all_layers_bbox_preds[:, :, :num_dn]
            assign = self.dn_assign(gts, dn_meta, device)
            dn_avg = self._avg_factor(sum(int(q.numel()) for q, _ in assign), all_layers_cls_scores)
            for layer in range(num_layers):
                values = self.loss_from_assignment(dn_cls[layer], dn_box[layer], text_token_mask, gts,
                                                   assign, dn_avg)
                prefix = '' if layer == num_layers - 1 else f'd{layer}.'
                for name, value in zip(('loss_cls', 'loss_bbox', 'loss_iou'), values):
                    losses[prefix + 'dn_' + name] = value
        return losses, last_assign
