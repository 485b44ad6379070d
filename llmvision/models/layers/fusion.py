"""Bi-directional image <-> text fusion attention (GLIP / Grounding-DINO ``BiAttentionBlock``)."""
from typing import Optional, Tuple

import torch
import torch.nn.functional as F
from torch import nn

MAX_CLAMP_VALUE = 50000.0  # fp16-safe: do not increase


class BiMultiHeadAttention(nn.Module):
    """One attention matrix, read both ways: image queries over text keys and text over image.

    Projections ``v_proj/l_proj`` (queries/keys), ``values_v_proj/values_l_proj`` and
    ``out_v_proj/out_l_proj`` (mmdet names). Logits are stabilised (global max subtracted, per-row
    max for the text direction) and clamped to ``+-50000``.
    """

    def __init__(self, v_dim: int, l_dim: int, embed_dim: int, num_heads: int, dropout: float = 0.1):
        super().__init__()
        if embed_dim % num_heads:
            raise ValueError(f'embed_dim {embed_dim} not divisible by num_heads {num_heads}')
        self.embed_dim, self.num_heads, self.dropout = embed_dim, num_heads, dropout
        self.head_dim = embed_dim // num_heads
        self.scale = self.head_dim ** -0.5
        self.v_proj = nn.Linear(v_dim, embed_dim)
        self.l_proj = nn.Linear(l_dim, embed_dim)
        self.values_v_proj = nn.Linear(v_dim, embed_dim)
        self.values_l_proj = nn.Linear(l_dim, embed_dim)
        self.out_v_proj = nn.Linear(embed_dim, v_dim)
        self.out_l_proj = nn.Linear(embed_dim, l_dim)
        for m in (self.v_proj, self.l_proj, self.values_v_proj, self.values_l_proj,
                  self.out_v_proj, self.out_l_proj):
            nn.init.xavier_uniform_(m.weight)
            nn.init.zeros_(m.bias)

    def _heads(self, x: torch.Tensor) -> torch.Tensor:
        b, n, _ = x.shape
        return x.view(b, n, self.num_heads, self.head_dim).transpose(1, 2).reshape(
            b * self.num_heads, n, self.head_dim)

    def forward(self, vision: torch.Tensor, text: torch.Tensor,
                vision_padding_mask: Optional[torch.Tensor] = None,
                text_padding_mask: Optional[torch.Tensor] = None) -> Tuple[torch.Tensor, torch.Tensor]:
        """``vision [B, V, Cv]``, ``text [B, T, Cl]``, padding masks ``[B, V]`` / ``[B, T]`` bool
        (True = padding) -> ``(delta_vision [B, V, Cv], delta_text [B, T, Cl])``."""
        bsz, nv, _ = vision.shape
        nt = text.shape[1]
        q = self._heads(self.v_proj(vision) * self.scale)
        k = self._heads(self.l_proj(text))
        val_v = self._heads(self.values_v_proj(vision))
        val_l = self._heads(self.values_l_proj(text))
        attn = torch.bmm(q, k.transpose(1, 2))  # [B*h, V, T]
        attn = (attn - attn.max()).clamp(-MAX_CLAMP_VALUE, MAX_CLAMP_VALUE)
        attn_t = attn.transpose(1, 2)
        attn_t = (attn_t - attn_t.max(-1, keepdim=True)[0]).clamp(-MAX_CLAMP_VALUE, MAX_CLAMP_VALUE)
        if vision_padding_mask is not None:
            m = vision_padding_mask[:, None, None, :].expand(-1, self.num_heads, -1, -1).flatten(0, 1)
            attn_t = attn_t.masked_fill(m, float('-inf'))
        attn_t = attn_t.softmax(-1)
        if text_padding_mask is not None:
            m = text_padding_mask[:, None, None, :].expand(-1, self.num_heads, -1, -1).flatten(0, 1)
            attn = attn.masked_fill(m, float('-inf'))
        attn_v = attn.softmax(-1)
        attn_v = F.dropout(attn_v, p=self.dropout, training=self.training)
        attn_t = F.dropout(attn_t, p=self.dropout, training=self.training)
        out_v = torch.bmm(attn_v, val_l).view(bsz, self.num_heads, nv, self.head_dim)
        out_l = torch.bmm(attn_t, val_v).view(bsz, self.num_heads, nt, self.head_dim)
        out_v = out_v.transpose(1, 2).reshape(bsz, nv, self.embed_dim)
        out_l = out_l.transpose(1, 2).reshape(bsz, nt, self.embed_dim)
        return self.out_v_proj(out_v), self.out_l_proj(out_l)


class DropPath(nn.Module):
    """Stochastic depth per sample (identity at eval or ``p == 0``)."""

    def __init__(self, p: float = 0.0):
        super().__init__()
        self.p = p

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.p == 0.0 or not self.training:
            return x
        keep = 1 - self.p
        noise = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
        return x * noise / keep


class BiAttentionBlock(nn.Module):
    """Pre-norm fusion with layer scale: ``x = LN(x) + drop_path(gamma * delta)`` for both modalities.

    Note the residual is the *normalised* input (as in the original Grounding-DINO, mmdet and HF).
    """

    def __init__(self, v_dim: int = 256, l_dim: int = 256, embed_dim: int = 1024, num_heads: int = 4,
                 dropout: float = 0.1, drop_path: float = 0.0, init_values: float = 1e-4):
        super().__init__()
        self.layer_norm_v = nn.LayerNorm(v_dim)
        self.layer_norm_l = nn.LayerNorm(l_dim)
        self.attn = BiMultiHeadAttention(v_dim, l_dim, embed_dim, num_heads, dropout)
        self.drop_path = DropPath(drop_path)
        self.gamma_v = nn.Parameter(init_values * torch.ones(v_dim))
        self.gamma_l = nn.Parameter(init_values * torch.ones(l_dim))

    def forward(self, vision, text, vision_padding_mask=None, text_padding_mask=None):
        """Shapes as :class:`BiMultiHeadAttention`; returns updated ``(vision, text)``."""
        vision = self.layer_norm_v(vision)
        text = self.layer_norm_l(text)
        dv, dl = self.attn(vision, text, vision_padding_mask, text_padding_mask)
        return vision + self.drop_path(self.gamma_v * dv), text + self.drop_path(self.gamma_l * dl)
