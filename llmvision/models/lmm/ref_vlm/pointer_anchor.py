"""Pointer anchors for the ``<REF>`` decoders: a query picks a memory cell, and its box is regressed from there.

REF-VLM's box head regresses the box from the decoder state alone (``anchor='none'``). A tiny decoder
trained from scratch does not learn that in a CPU budget: it collapses to the mean box
(``benchmarks/ref_decoder_grounding.py``). With ``anchor='pointer'`` (the tiny recipe; not in REF-VLM) each
decoder query (the projected ``<REF>`` state + its slot position, before the decoder) scores every memory
cell with a one-head pointer attention, as a CenterNet heat map conditioned on the query:

- the pointer is trained by :func:`pointer_loss` (``-log`` of its softmax mass on the cells inside the target
  box);
- the anchor is the centre of the picked cell: the best-scored cell overall at inference, the best-scored
  cell inside the target box in training (so the regression below always learns from a cell on its object);
- the features (memory + position) of the cells that contain the anchor on every level, concatenated and
  projected, are added to every decoder layer's output before the box head, whose ``(x, y)`` are offsets in
  logit space from the anchor (as DETR variants refine a reference point):
  ``centre = sigmoid(inverse_sigmoid(anchor) + offset)``; ``(w, h)`` as before. A pick on a fine level thus
  also sees the coarse cells that hold the whole object (after 1500 steps of the tiny recipe, IoU > 0.5 on 58%
  of the correct picks with the picked cell's feature alone, 66% with every level's: RESULTS.md).
"""
import math
from typing import Dict, List, Optional

import torch
from torch import nn

from llmvision.models.layers.decoder import inverse_sigmoid
from llmvision.structures.boxes import cxcywh_to_xyxy

ANCHORS = ('none', 'pointer')


def check_anchor(anchor: str) -> str:
    """``anchor`` if it is one of :data:`ANCHORS`, else a ``ValueError`` naming them."""
    if anchor not in ANCHORS:
        raise ValueError(f'box anchor {anchor!r} is not one of {ANCHORS}')
    return anchor


def cell_centres(shapes: List[tuple], device=None) -> torch.Tensor:
    """Normalized ``(x, y)`` centres ``[L, 2]`` of the cells of maps of ``shapes`` ``[(H_l, W_l)]``, flattened
    row-major and concatenated in level order (the order of :class:`.memory.FlattenedMemory`)."""
    out = []
    for h, w in shapes:
        ys, xs = torch.meshgrid((torch.arange(h, device=device) + 0.5) / h,
                                (torch.arange(w, device=device) + 0.5) / w, indexing='ij')
        out.append(torch.stack([xs.flatten(), ys.flatten()], -1))
    return torch.cat(out)


def cells_in_boxes(boxes: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """``[..., L]`` bool: the cells whose centre lies inside each box (normalized cxcywh ``[..., 4]``); the
    cell nearest to the box centre always counts, so a box smaller than a cell still has one."""
    b = boxes.float()
    xyxy = cxcywh_to_xyxy(b)[..., None, :]  # [..., 1, 4]
    c = centres.float()
    inside = (c[:, 0] >= xyxy[..., 0]) & (c[:, 0] <= xyxy[..., 2]) & \
             (c[:, 1] >= xyxy[..., 1]) & (c[:, 1] <= xyxy[..., 3])
    nearest = ((c - b[..., None, :2]) ** 2).sum(-1).argmin(-1, keepdim=True)
    return inside.scatter(-1, nearest, True)


def cells_at(points: torch.Tensor, shapes: List[tuple]) -> torch.Tensor:
    """Flat memory index ``[..., num_levels]`` of the cell containing each normalized point ``[..., 2]`` on
    every level of ``shapes`` ``[(H_l, W_l)]`` (the order of :func:`cell_centres`)."""
    out, start = [], 0
    for h, w in shapes:
        ix = (points[..., 0] * w).long().clamp(0, w - 1)
        iy = (points[..., 1] * h).long().clamp(0, h - 1)
        out.append(start + iy * w + ix)
        start += h * w
    return torch.stack(out, -1)


class PointerAnchor(nn.Module):
    """One-head pointer attention of ``query [B, N, D]`` over ``memory + pos [B, L, D]``.

    ``forward`` -> ``{'anchors' [B, N, 2], 'cell_features' [B, N, D], 'pointer_logits' [B, N, L],
    'cell_centres' [L, 2]}``: logits = q . k / sqrt(D) (float32); the picked cell (module docstring;
    ``targets [B, N, 4]`` restricts the pick to the cells inside them) gives the anchor = its centre;
    ``cell_features`` = the projected concatenation of the features of the cells containing the anchor on each of
    the ``num_levels`` levels (``shapes``); ``cell_centres`` = :func:`cell_centres` of ``shapes``."""

    def __init__(self, embed_dims: int, num_levels: int = 1):
        super().__init__()
        self.q = nn.Linear(embed_dims, embed_dims)
        self.k = nn.Linear(embed_dims, embed_dims)
        self.cell_proj = nn.Linear(embed_dims * num_levels, embed_dims)
        self.num_levels = num_levels
        self.scale = 1.0 / math.sqrt(embed_dims)

    def forward(self, query: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor, shapes: List[tuple],
                targets: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        if len(shapes) != self.num_levels:
            raise ValueError(f'PointerAnchor: {len(shapes)} memory levels for num_levels={self.num_levels}')
        centres = cell_centres(shapes, memory.device)
        keyed = memory + memory_pos  # [B, L, D]
        logits = (torch.einsum('bnd,bld->bnl', self.q(query), self.k(keyed)) * self.scale).float()
        score = logits.detach()
        if targets is not None:
            score = score.masked_fill(~cells_in_boxes(targets, centres), float('-inf'))
        anchors = centres[score.argmax(-1)]  # [B, N, 2]
        idx = cells_at(anchors, shapes).flatten(1)  # [B, N * num_levels]
        feats = torch.gather(keyed, 1, idx[..., None].expand(-1, -1, keyed.shape[-1]))
        return {'anchors': anchors.to(query.dtype), 'pointer_logits': logits, 'cell_centres': centres,
                'cell_features': self.cell_proj(feats.reshape(*anchors.shape[:2], -1))}


def pointer_loss(logits: torch.Tensor, boxes: torch.Tensor, valid: torch.Tensor, centres: torch.Tensor) -> torch.Tensor:
    """Mean over the valid queries of ``-log`` (softmax mass on the cells inside the target box,
    :func:`cells_in_boxes`).

    Args:
        logits: ``[B, Q, L]`` pointer logits.
        boxes: ``[B, Q, 4]`` matched targets, normalized cxcywh.
        valid: ``[B, Q]`` bool.
        centres: ``[L, 2]`` normalized cell centres.
    """
    lg, bx = logits[valid].float(), boxes[valid].float()
    if lg.shape[0] == 0:
        return logits.sum() * 0.0
    inside = cells_in_boxes(bx, centres)
    return -lg.log_softmax(-1).masked_fill(~inside, float('-inf')).logsumexp(-1).mean()


def anchored(raw_xy: torch.Tensor, anchors: torch.Tensor) -> torch.Tensor:
    """``sigmoid(inverse_sigmoid(anchors) + raw_xy)``: normalized points ``[..., 2]`` offset from the anchors."""
    return (inverse_sigmoid(anchors) + raw_xy).sigmoid()
