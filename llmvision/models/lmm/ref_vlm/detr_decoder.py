"""DETR transformer decoder (post-norm): self-attention -> cross-attention to the memory -> FFN."""
from typing import Optional

import torch
from torch import nn

from llmvision.models.layers.attention import MultiheadAttention
from llmvision.models.layers.ffn import FFN


class DetrDecoderLayer(nn.Module):
    """One post-norm DETR layer; positions are added to queries / keys, never to values."""

    def __init__(self, embed_dims: int, num_heads: int, ffn_dim: int, dropout: float = 0.0):
        super().__init__()
        self.self_attn = MultiheadAttention(embed_dims, num_heads, dropout)
        self.norm1 = nn.LayerNorm(embed_dims)
        self.cross_attn = MultiheadAttention(embed_dims, num_heads, dropout)
        self.norm2 = nn.LayerNorm(embed_dims)
        self.ffn = FFN(embed_dims, ffn_dim, dropout)
        self.norm3 = nn.LayerNorm(embed_dims)
        self.drop = nn.Dropout(dropout)

    def forward(self, query, query_pos, memory, memory_pos, query_padding_mask: Optional[torch.Tensor] = None):
        """``query/query_pos [B, Q, D]``, ``memory/memory_pos [B, L, D]``, ``query_padding_mask [B, Q]``
        (True = padding) -> ``[B, Q, D]``."""
        q = self.self_attn(query, query_pos=query_pos, key_padding_mask=query_padding_mask)
        query = self.norm1(query + self.drop(q))
        q = self.cross_attn(query, memory, memory, query_pos=query_pos, key_pos=memory_pos)
        query = self.norm2(query + self.drop(q))
        return self.norm3(query + self.drop(self.ffn(query)))


class DetrDecoder(nn.Module):
    """``num_layers`` :class:`DetrDecoderLayer` s; returns every layer's output after a shared LayerNorm
    ``[num_layers, B, Q, D]`` (DETR's auxiliary outputs)."""

    def __init__(self, num_layers: int = 6, embed_dims: int = 256, num_heads: int = 8, ffn_dim: int = 2048,
                 dropout: float = 0.0):
        super().__init__()
        self.layers = nn.ModuleList(DetrDecoderLayer(embed_dims, num_heads, ffn_dim, dropout)
                                    for _ in range(num_layers))
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, query, query_pos, memory, memory_pos, query_padding_mask=None) -> torch.Tensor:
        out = []
        for layer in self.layers:
            query = layer(query, query_pos, memory, memory_pos, query_padding_mask)
            out.append(self.norm(query))
        return torch.stack(out)
