"""Box decoder of REF-VLM: each ``<REF>`` state is one DETR query; an MLP head gives its box (cxcywh).

Queries = the ``<REF>`` states projected to the decoder width; query positions = a learned embedding of
the query's slot (its rank among the sample's ``<REF>`` s of this unit). A DETR decoder (6 layers,
d 256, 8 heads, FFN 2048 in the original) attends to the visual memory with 2-D sine positions; every
layer's output goes through the shared box head (auxiliary losses). Loss: L1 x5 + GIoU x2 per layer after
Hungarian matching inside each phrase's group of ``<REF>`` s. ``anchor='pointer'`` (not in REF-VLM; the tiny
CPU recipe) picks a memory cell per query with a pointer attention, regresses the box from that cell and adds
the pointer's loss ``box_pointer`` x ``pointer_weight`` (:mod:`.pointer_anchor`).
"""
from typing import Callable, Dict, List, Optional, Sequence

import torch
from torch import nn

from llmvision.models.layers.mlp import MLP
from llmvision.registry import MODELS

from .box_loss import assign_targets, box_loss_terms, gather_matched
from .detr_decoder import DetrDecoder
from .matching import group_matcher
from .memory import FlattenedMemory
from .pointer_anchor import PointerAnchor, anchored, check_anchor, pointer_loss
from .ref_queries import RefQueries


class RefQueryDecoderBase(nn.Module):
    """Shared parts of the unit decoders: visual memory, ``<REF>`` projection, slot positions, DETR stack.

    Args:
        llm_dim: width ``H`` of the LLM hidden states.
        in_channels: channels of the visual maps (from :class:`RefVisualFeatures`).
        embed_dims, num_layers, num_heads, ffn_dim, dropout: the DETR decoder.
        num_queries: most query slots per sample.
        l1_weight, giou_weight: box loss (and matching cost) weights.
        aux_loss: add the losses of every decoder layer (else the last only).
        anchor: ``'none'`` (REF-VLM: the head regresses the box) or ``'pointer'`` (the head's centre is an
            offset from a pointer attention's anchor, :mod:`.pointer_anchor`).
        pointer_weight: weight of the pointer's loss in ``'box'`` (``anchor='pointer'`` only).
    """

    def __init__(self, llm_dim: int, in_channels: Sequence[int], embed_dims: int = 256, num_layers: int = 6,
                 num_heads: int = 8, ffn_dim: int = 2048, num_queries: int = 100, dropout: float = 0.0,
                 l1_weight: float = 5.0, giou_weight: float = 2.0, aux_loss: bool = True, anchor: str = 'none',
                 pointer_weight: float = 1.0):
        super().__init__()
        self.pointer_weight = pointer_weight
        self.num_queries, self.aux_loss = num_queries, aux_loss
        self.l1_weight, self.giou_weight = l1_weight, giou_weight
        self.memory = FlattenedMemory(in_channels, embed_dims)
        self.ref_proj = MLP(llm_dim, embed_dims, embed_dims, 2)
        self.query_pos = nn.Embedding(num_queries, embed_dims)
        self.decoder = DetrDecoder(num_layers, embed_dims, num_heads, ffn_dim, dropout)
        self.box_head = MLP(embed_dims, embed_dims, 4, 3)
        self.matcher = group_matcher(l1_weight, giou_weight)
        self.pointer = PointerAnchor(embed_dims, len(in_channels)) if check_anchor(anchor) == 'pointer' else None
        if self.pointer is not None:  # offsets start at 0: the first boxes sit on their anchors
            nn.init.zeros_(self.box_head.layers[-1].weight[:2])
            nn.init.zeros_(self.box_head.layers[-1].bias[:2])

    def _check(self, num_slots: int) -> None:
        if num_slots > self.num_queries:
            raise ValueError(f'{type(self).__name__}: {num_slots} query slots in a sample but num_queries='
                             f'{self.num_queries}; raise num_queries in the config')

    def visual_memory(self, maps: List[torch.Tensor], sample_index: torch.Tensor):
        """Memory ``[B_u, L, D]``, its positions ``[B_u, L, D]`` and the level shapes ``[(H_l, W_l)]``
        of the samples in ``sample_index``."""
        memory, pos = self.memory([m[sample_index] for m in maps])
        return memory, pos, [tuple(m.shape[-2:]) for m in maps]

    def pointer_outputs(self, query: torch.Tensor, memory: torch.Tensor, memory_pos: torch.Tensor,
                        shapes: List[tuple], queries: RefQueries) -> Dict[str, torch.Tensor]:
        """Pointer of the decoder's input queries (content + slot position) ``query [B_u, Q, D]``:
        :class:`PointerAnchor`'s ``{'anchors', 'cell_features', 'pointer_logits', 'cell_centres'}``, empty with
        ``anchor='none'``. In training the pick is restricted to the target boxes of ``queries``.

        The pointer reads the queries before the decoder, not its outputs: on cached ``<REF>`` states of a
        tiny REF-VLM a pointer on the queries learned grounding in 600 steps and one on the decoder outputs
        did not (RESULTS.md)."""
        if self.pointer is None:
            return {}
        targets = queries.boxes if self.training else None
        return self.pointer(query, memory, memory_pos, shapes, targets)

    def boxes(self, hidden: torch.Tensor, pointer: Dict[str, torch.Tensor]) -> torch.Tensor:
        """Box head: ``hidden [layers, B_u, Q, D]`` (+ the picked cells' features ``[B_u, Q, D]``) ->
        normalized cxcywh ``[layers, B_u, Q, 4]``, centres offset from the anchors ``[B_u, Q, 2]``
        (``pointer`` = :meth:`pointer_outputs`)."""
        if not pointer:
            return self.box_head(hidden).sigmoid()
        raw = self.box_head(hidden + pointer['cell_features'])
        return torch.cat([anchored(raw[..., :2], pointer['anchors']), raw[..., 2:].sigmoid()], -1)

    def matched_losses(self, outputs: Dict[str, torch.Tensor], queries: RefQueries,
                       extra: Optional[Callable] = None) -> Dict[str, torch.Tensor]:
        """Sum over layers (or the last) of the box terms after in-group matching (with ``box_pointer`` when
        ``outputs`` has ``pointer_logits [B_u, Q, L]`` and ``cell_centres [L, 2]``), plus
        ``extra(layer, assign [B_u, Q], matched_boxes [B_u, Q, 4])`` terms; adds ``'box'`` =
        ``l1_weight * box_l1 + giou_weight * box_giou (+ pointer_weight * box_pointer)``."""
        n = outputs['boxes'].shape[0]
        terms: Dict[str, torch.Tensor] = {}
        for lid in (range(n) if self.aux_loss else [n - 1]):
            assign = assign_targets(outputs['boxes'][lid], queries.boxes, queries.groups, self.matcher)
            boxes = gather_matched(queries.boxes, assign)
            bt = box_loss_terms(outputs['boxes'][lid], boxes, queries.valid)
            layer_terms = {'box_l1': bt['l1'], 'box_giou': bt['giou']}
            if extra is not None:
                layer_terms.update(extra(lid, assign, boxes))
            for key, value in layer_terms.items():
                terms[key] = terms[key] + value if key in terms else value
        terms['box'] = self.l1_weight * terms['box_l1'] + self.giou_weight * terms['box_giou']
        if 'pointer_logits' in outputs:  # one pointer per query, before the decoder: matched as the last layer
            terms['box_pointer'] = pointer_loss(outputs['pointer_logits'], boxes, queries.valid,
                                                outputs['cell_centres'])
            terms['box'] = terms['box'] + self.pointer_weight * terms['box_pointer']
        return terms


@MODELS.register_module()
class RefBoxDecoder(RefQueryDecoderBase):
    """``<REF>`` states -> boxes. See the module docstring and :class:`RefQueryDecoderBase` for arguments."""

    def forward(self, queries: RefQueries, maps: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Returns ``{'boxes': [num_layers, B_u, Q, 4]}`` normalized cxcywh (sigmoid), with ``anchor='pointer'``
        also :meth:`pointer_outputs` (``pointer_logits [B_u, Q, L]``, ``cell_centres [L, 2]``, ...)."""
        q = queries.states.shape[1]
        self._check(q)
        memory, memory_pos, shapes = self.visual_memory(maps, queries.sample_index)
        content = self.ref_proj(queries.states.to(memory.dtype))
        pos = self.query_pos.weight[:q][None].expand(content.shape[0], -1, -1)
        hidden = self.decoder(content, pos, memory, memory_pos, queries.padding_mask)
        pointer = self.pointer_outputs(content + pos, memory, memory_pos, shapes, queries)
        return {**pointer, 'boxes': self.boxes(hidden, pointer)}

    def loss(self, outputs: Dict[str, torch.Tensor], queries: RefQueries) -> Dict[str, torch.Tensor]:
        """``{'box_l1', 'box_giou', ('box_pointer',) 'box'}``: unweighted terms and their weighted sum."""
        return self.matched_losses(outputs, queries)

    @staticmethod
    def predictions(outputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Last layer: ``{'boxes': [B_u, Q, 4]}``."""
        return {'boxes': outputs['boxes'][-1]}
