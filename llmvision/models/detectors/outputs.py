"""What a Grounding-DINO forward hands its callers: one typed record, returned, never kept on the module.

``L`` decoder layers, ``B`` images, ``Ndn`` denoising queries (0 outside training with denoising)
followed by ``Q`` matching queries, ``N`` flattened encoder tokens, ``T`` text tokens, ``C`` channels,
``K = max_text_len``. Boxes are normalized cxcywh.
"""
from dataclasses import dataclass
from typing import List, Optional, Tuple

import torch


@dataclass
class DetectorOutputs:
    """Raw outputs of :meth:`GroundingDINO.forward_transformer` (and of ``mode='tensor'``).

    Attributes:
        all_cls_scores: ``[L, B, Ndn + Q, K]`` per decoder layer class logits.
        all_bbox_preds: ``[L, B, Ndn + Q, 4]`` per decoder layer boxes (sigmoid cxcywh).
        enc_cls_scores: ``[B, Q, K]`` logits of the proposals selected from the encoder.
        enc_bbox_preds: ``[B, Q, 4]`` their boxes.
        hidden_states: ``[L, B, Ndn + Q, C]`` decoder outputs.
        references: ``L + 1`` reference boxes ``[B, Ndn + Q, 4]``.
        memory: ``[B, N, C]`` encoder image memory; ``memory_text`` ``[B, T, C]``.
        text_token_mask: ``[B, T]`` True = real text token.
        enc_outputs_class: ``[B, N, K]``; ``enc_outputs_coord_unact`` ``[B, N, 4]`` (pre-sigmoid).
        topk_indices: ``[B, Q]`` encoder tokens chosen as proposals.
        spatial_shapes: ``[num_levels, 2]`` (H_l, W_l) of the flattened memory.
        valid_ratios: ``[B, num_levels, 2]`` (w, h) un-padded share of each level.
        dn_meta: the denoising generator's meta (``num_denoising_queries``, ...) or None.
        input_ids: ``[B, T]`` prompt token ids (``mode='tensor'`` only).
        last_layer_assign: training only: per image ``(query_idx, gt_idx)`` Hungarian matches of the
            last decoder layer; ``query_idx`` counts matching queries (add ``num_denoising`` to index
            ``hidden_states``).
        gt_labels: training only: per image ``[n_gt]`` entity index of each gt box.
    """
    all_cls_scores: torch.Tensor
    all_bbox_preds: torch.Tensor
    enc_cls_scores: torch.Tensor
    enc_bbox_preds: torch.Tensor
    hidden_states: torch.Tensor
    references: List[torch.Tensor]
    memory: torch.Tensor
    memory_text: torch.Tensor
    text_token_mask: torch.Tensor
    enc_outputs_class: torch.Tensor
    enc_outputs_coord_unact: torch.Tensor
    topk_indices: torch.Tensor
    spatial_shapes: torch.Tensor
    valid_ratios: torch.Tensor
    dn_meta: Optional[dict] = None
    input_ids: Optional[torch.Tensor] = None
    last_layer_assign: Optional[List[Tuple[torch.Tensor, torch.Tensor]]] = None
    gt_labels: Optional[List[torch.Tensor]] = None

    @property
    def num_denoising(self) -> int:
        """Denoising queries in front of the matching queries (0 without denoising)."""
        return int((self.dn_meta or {}).get('num_denoising_queries', 0))
