"""Grounding-DINO encoder: per layer fusion -> text self-attention -> deformable self-attention."""
from typing import List, Sequence, Tuple

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint

from llmvision.models.ops import MultiScaleDeformableAttention

from .attention import MultiheadAttention
from .ffn import FFN
from .fusion import BiAttentionBlock
from .position_encoding import coordinate_to_encoding


class TextEnhancerLayer(nn.Module):
    """Post-norm transformer layer over text tokens (sub-sentence masked self-attention + FFN)."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 4, ffn_dim: int = 1024,
                 dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)

    def forward(self, text, text_pos, attn_mask):
        """``text [B, T, C]``, ``text_pos [B, T, C]``, ``attn_mask [B, T, T]`` bool True = blocked."""
        text = self.norm1(text + self.drop(self.self_attn(text, query_pos=text_pos, attn_mask=attn_mask)))
        return self.norm2(text + self.ffn(text))


class DeformableEncoderLayer(nn.Module):
    """Post-norm multi-scale deformable self-attention + FFN over flattened image tokens."""

    def __init__(self, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                 num_points: int = 4, ffn_dim: int = 2048, dropout: float = 0.0,
                 msda_backend: str = 'auto'):
        super().__init__()
        self.self_attn = MultiScaleDeformableAttention(embed_dims, num_heads, num_levels, num_points,
                                                       backend=msda_backend)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, ffn_dim, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)

    def forward(self, query, query_pos, reference_points, spatial_shapes, level_start_index,
                key_padding_mask):
        """``query/query_pos [B, N, C]``, ``reference_points [B, N, L, 2]`` -> ``[B, N, C]``."""
        attn = self.self_attn(query, None, reference_points, spatial_shapes, level_start_index,
                              key_padding_mask=key_padding_mask, query_pos=query_pos)
        query = self.norm1(query + self.drop(attn))
        return self.norm2(query + self.ffn(query))


def encoder_reference_points(spatial_shapes: Sequence[Tuple[int, int]], valid_ratios: torch.Tensor
                             ) -> torch.Tensor:
    """Pixel centres of every level, normalised by the valid extent, seen from every level.

    ``valid_ratios [B, L, 2]`` (w, h) -> ``[B, N, L, 2]`` normalised ``(x, y)``.
    """
    refs = []
    for lvl, (h, w) in enumerate(spatial_shapes):
        ys, xs = torch.meshgrid(
            torch.linspace(0.5, h - 0.5, h, dtype=valid_ratios.dtype, device=valid_ratios.device),
            torch.linspace(0.5, w - 0.5, w, dtype=valid_ratios.dtype, device=valid_ratios.device),
            indexing='ij')
        ys = ys.reshape(-1)[None] / (valid_ratios[:, None, lvl, 1] * h)
        xs = xs.reshape(-1)[None] / (valid_ratios[:, None, lvl, 0] * w)
        refs.append(torch.stack((xs, ys), -1))
    return torch.cat(refs, 1)[:, :, None] * valid_ratios[:, None]


class GroundingDinoEncoder(nn.Module):
    """``num_layers`` x (image<->text fusion, text enhancer, deformable image self-attention).

    Args mirror REFERENCE.md section 1: fusion embed 1024 / 4 heads / layer scale 1e-4, text layer
    4 heads / FFN 1024, deformable layer 8 heads / 4 levels / 4 points / FFN 2048.
    ``num_cp``: gradient checkpointing (recompute in backward) of the first ``num_cp`` layers
    in training, ``-1`` all (mmdet's ``num_cp``); saves activation memory, same gradients.
    """

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8,
                 num_levels: int = 4, num_points: int = 4, ffn_dim: int = 2048,
                 text_num_heads: int = 4, text_ffn_dim: int = 1024, fusion_embed_dim: int = 1024,
                 fusion_num_heads: int = 4, fusion_dropout: float = 0.1,
                 fusion_drop_path: float = 0.0, fusion_init_values: float = 1e-4,
                 dropout: float = 0.0, msda_backend: str = 'auto', num_cp: int = 0):
        super().__init__()
        self.embed_dims = embed_dims
        self.num_cp = num_layers if num_cp < 0 else min(num_cp, num_layers)
        self.layers = nn.ModuleList(
            DeformableEncoderLayer(embed_dims, num_heads, num_levels, num_points, ffn_dim, dropout,
                                   msda_backend) for _ in range(num_layers))
        self.text_layers = nn.ModuleList(
            TextEnhancerLayer(embed_dims, text_num_heads, text_ffn_dim, dropout)
            for _ in range(num_layers))
        self.fusion_layers = nn.ModuleList(
            BiAttentionBlock(embed_dims, embed_dims, fusion_embed_dim, fusion_num_heads,
                             fusion_dropout, fusion_drop_path, fusion_init_values)
            for _ in range(num_layers))

    def forward(self, query, query_pos, key_padding_mask, spatial_shapes, spatial_shapes_list,
                level_start_index, valid_ratios, memory_text, text_padding_mask, text_position_ids,
                text_self_attention_masks, return_intermediate: bool = False):
        """Args:
            query/query_pos ``[B, N, C]`` flattened image tokens + level/position embedding;
            key_padding_mask ``[B, N]`` bool True = padding; spatial_shapes ``[L, 2]`` long (and as a
            python list); level_start_index ``[L]``; valid_ratios ``[B, L, 2]``;
            memory_text ``[B, T, C]``; text_padding_mask ``[B, T]`` bool True = padding;
            text_position_ids ``[B, T]``; text_self_attention_masks ``[B, T, T]`` bool True = attend.
        Returns ``(memory [B, N, C], memory_text [B, T, C])`` (+ a list of per-layer pairs when
        ``return_intermediate``).
        """
        reference_points = encoder_reference_points(spatial_shapes_list, valid_ratios)
        text_pos = coordinate_to_encoding(text_position_ids[..., None].float(), self.embed_dims)
        text_blocked = ~text_self_attention_masks
        states: List[Tuple[torch.Tensor, torch.Tensor]] = []
        for i in range(len(self.layers)):
            args = (query, memory_text, query_pos, reference_points, spatial_shapes,
                    level_start_index, key_padding_mask, text_padding_mask, text_pos, text_blocked)
            if i < self.num_cp and self.training and torch.is_grad_enabled():
                query, memory_text = checkpoint(self._layer, i, *args, use_reentrant=False)
            else:
                query, memory_text = self._layer(i, *args)
            if return_intermediate:
                states.append((query, memory_text))
        if return_intermediate:
            return query, memory_text, states
        return query, memory_text

    def _layer(self, i, query, memory_text, query_pos, reference_points, spatial_shapes,
               level_start_index, key_padding_mask, text_padding_mask, text_pos, text_blocked):
        """Layer ``i``: fusion, text enhancer, deformable self-attention."""
        query, memory_text = self.fusion_layers[i](query, memory_text, key_padding_mask,
                                                   text_padding_mask)
        memory_text = self.text_layers[i](memory_text, text_pos, text_blocked)
        query = self.layers[i](query, query_pos, reference_points, spatial_shapes,
                               level_start_index, key_padding_mask)
        return query, memory_text
