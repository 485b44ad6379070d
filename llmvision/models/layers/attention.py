"""Multi-head attention with separate q/k/v projections and boolean masks (True = blocked)."""
from typing import Optional

import torch
import torch.nn.functional as F
from torch import nn


class MultiheadAttention(nn.Module):
    """Standard scaled dot-product attention (``F.scaled_dot_product_attention``), batch first.

    ``q_proj/k_proj/v_proj/out_proj`` are ``Linear(C, C)`` (mmcv's packed ``in_proj_weight`` is split
    by the checkpoint converters). Positional embeddings are added to queries/keys, not values.
    """

    def __init__(self, embed_dims: int, num_heads: int, dropout: float = 0.0):
        super().__init__()
        if embed_dims % num_heads:
            raise ValueError(f'embed_dims {embed_dims} not divisible by num_heads {num_heads}')
        self.embed_dims, self.num_heads, self.dropout = embed_dims, num_heads, dropout
        self.q_proj = nn.Linear(embed_dims, embed_dims)
        self.k_proj = nn.Linear(embed_dims, embed_dims)
        self.v_proj = nn.Linear(embed_dims, embed_dims)
        self.out_proj = nn.Linear(embed_dims, embed_dims)

    def forward(self, query: torch.Tensor, key: Optional[torch.Tensor] = None,
                value: Optional[torch.Tensor] = None, query_pos: Optional[torch.Tensor] = None,
                key_pos: Optional[torch.Tensor] = None, attn_mask: Optional[torch.Tensor] = None,
                key_padding_mask: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Args:
            query ``[B, Q, C]``; key/value ``[B, K, C]`` (default: query); query_pos ``[B, Q, C]``;
            key_pos ``[B, K, C]``; attn_mask ``[Q, K]``, ``[B, Q, K]`` or ``[B, nH, Q, K]`` bool
            (True = blocked); key_padding_mask ``[B, K]`` bool (True = padding).
        Returns ``[B, Q, C]``.
        """
        if key is None:
            key = query
            if key_pos is None:
                key_pos = query_pos
        if value is None:
            value = key
        q = query if query_pos is None else query + query_pos
        k = key if key_pos is None else key + key_pos
        bsz, nq, _ = q.shape
        nk = k.shape[1]
        h, d = self.num_heads, self.embed_dims // self.num_heads
        q = self.q_proj(q).view(bsz, nq, h, d).transpose(1, 2)
        k = self.k_proj(k).view(bsz, nk, h, d).transpose(1, 2)
        v = self.v_proj(value).view(bsz, nk, h, d).transpose(1, 2)
        blocked = None
        if attn_mask is not None:
            blocked = attn_mask.bool()
            if blocked.dim() == 3:
                blocked = blocked[:, None]
        if key_padding_mask is not None:
            pad = key_padding_mask.bool()[:, None, None, :]
            blocked = pad if blocked is None else (blocked | pad)
        allowed = None if blocked is None else ~blocked
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=allowed,
                                             dropout_p=self.dropout if self.training else 0.0)
        return self.out_proj(out.transpose(1, 2).reshape(bsz, nq, self.embed_dims))
