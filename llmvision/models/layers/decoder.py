"""Grounding-DINO decoder: self-attn -> text cross-attn -> deformable cross-attn -> FFN, box refinement."""
from typing import List, Optional, Tuple

import torch
from torch import nn

from llmvision.models.ops import MultiScaleDeformableAttention

from .attention import MultiheadAttention
from .ffn import FFN
from .mlp import MLP
from .position_encoding import coordinate_to_encoding


def inverse_sigmoid(x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """``log(x / (1 - x))`` with both terms clamped to ``>= eps`` (mmdet's definition)."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


class GroundingDecoderLayer(nn.Module):
    """Post-norm decoder layer; all sub-blocks add a residual and a LayerNorm."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, text_num_heads: int = 8,
                 num_levels: int = 4, num_points: int = 4, ffn_dim: int = 2048,
                 dropout: float = 0.0, msda_backend: str = 'auto'):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.cross_attn_text = MultiheadAttention(embed_dims, text_num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.cross_attn = MultiScaleDeformableAttention(embed_dims, num_heads, num_levels, num_points,
                                                        backend=msda_backend)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, ffn_dim, dropout)
        self.norm4 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)

    def forward(self, query, query_pos, value, key_padding_mask, self_attn_mask, reference_points,
                spatial_shapes, level_start_index, memory_text, text_padding_mask):
        """``query/query_pos [B, Q, C]``, ``value [B, N, C]``, ``self_attn_mask [Q, Q]`` bool
        True = blocked, ``reference_points [B, Q, L, 4]``, ``memory_text [B, T, C]`` ->
        ``[B, Q, C]``."""
        q = self.self_attn(query, query_pos=query_pos, attn_mask=self_attn_mask)
        query = self.norm1(query + self.drop(q))
        q = self.cross_attn_text(query, memory_text, memory_text, query_pos=query_pos,
                                 key_padding_mask=text_padding_mask)
        query = self.norm2(query + self.drop(q))
        q = self.cross_attn(query, value, reference_points, spatial_shapes, level_start_index,
                            key_padding_mask=key_padding_mask, query_pos=query_pos)
        query = self.norm3(query + self.drop(q))
        return self.norm4(query + self.ffn(query))


class GroundingDinoDecoder(nn.Module):
    """Decoder stack with iterative box refinement (DINO "look forward twice").

    ``ref_point_head`` maps the sine encoding of each reference box (4 x C/2) to a query position;
    ``norm`` is applied to every layer's output before the prediction heads (not between layers).
    """

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8,
                 text_num_heads: int = 8, num_levels: int = 4, num_points: int = 4,
                 ffn_dim: int = 2048, dropout: float = 0.0, refine_eps: float = 1e-3,
                 msda_backend: str = 'auto'):
        super().__init__()
        self.embed_dims = embed_dims
        self.refine_eps = refine_eps
        self.layers = nn.ModuleList(
            GroundingDecoderLayer(embed_dims, num_heads, text_num_heads, num_levels, num_points,
                                  ffn_dim, dropout, msda_backend) for _ in range(num_layers))
        self.ref_point_head = MLP(embed_dims * 2, embed_dims, embed_dims, 2)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, query, value, key_padding_mask, self_attn_mask, reference_points,
                spatial_shapes, level_start_index, valid_ratios, memory_text, text_padding_mask,
                reg_branches: Optional[nn.ModuleList] = None
                ) -> Tuple[torch.Tensor, List[torch.Tensor]]:
        """Args:
            query ``[B, Q, C]`` content queries; value ``[B, N, C]`` encoder memory;
            reference_points ``[B, Q, 4]`` sigmoid cxcywh; valid_ratios ``[B, L, 2]``;
            reg_branches: per-layer box MLPs (refinement), or None.
        Returns ``(hidden [num_layers, B, Q, C] normalised, references)`` where ``references[0]`` is
        the input and ``references[i + 1]`` the (non-detached) refined boxes of layer ``i``.
        """
        intermediate, references = [], [reference_points]
        for lid, layer in enumerate(self.layers):
            ref_input = reference_points[:, :, None] * torch.cat([valid_ratios, valid_ratios], -1)[:, None]
            query_sine = coordinate_to_encoding(ref_input[:, :, 0, :], self.embed_dims // 2)
            query_pos = self.ref_point_head(query_sine)
            query = layer(query, query_pos, value, key_padding_mask, self_attn_mask, ref_input,
                          spatial_shapes, level_start_index, memory_text, text_padding_mask)
            if reg_branches is not None:
                new_ref = (reg_branches[lid](query)
                           + inverse_sigmoid(reference_points, self.refine_eps)).sigmoid()
                references.append(new_ref)
                reference_points = new_ref.detach()
            else:
                references.append(reference_points)
            intermediate.append(self.norm(query))
        return torch.stack(intermediate), references
