"""Contrastive classification head: query-text token similarity logits."""
import math
from typing import Optional, Union

import torch
from torch import nn


class ContrastiveEmbed(nn.Module):
    """``logits = (q @ t^T) * scale + bias``, padded text -> ``-inf``, right-padded to ``max_text_len``.

    ``log_scale``: ``'auto'`` divides by ``sqrt(C)`` (MM-Grounding-DINO / LLMDet / HF
    MMGroundingDino), ``None`` no scaling (original Grounding-DINO), a float makes a learnable
    ``log_scale`` multiplying by ``exp(log_scale)``. ``bias``: a learnable scalar initialised to
    ``-log((1 - 0.01) / 0.01)`` (prior 0.01), as mmdet and HF do.
    """

    def __init__(self, max_text_len: int = 256, log_scale: Optional[Union[str, float]] = 'auto',
                 bias: bool = True):
        super().__init__()
        self.max_text_len = max_text_len
        if isinstance(log_scale, float):
            self.log_scale = nn.Parameter(torch.tensor([log_scale]))
        elif log_scale in ('auto', 'none', None):
            self.log_scale = log_scale
        else:
            raise ValueError(f"log_scale must be 'auto', None or a float, got {log_scale!r}")
        self.bias = nn.Parameter(torch.tensor([-math.log((1 - 0.01) / 0.01)])) if bias else None

    def forward(self, query: torch.Tensor, text: torch.Tensor,
                text_token_mask: torch.Tensor) -> torch.Tensor:
        """``query [B, Q, C]``, ``text [B, T, C]``, ``text_token_mask [B, T]`` bool (True = real)
        -> ``[B, Q, max_text_len]`` logits (``-inf`` beyond ``T`` and at padded tokens)."""
        res = query @ text.transpose(-1, -2)
        if isinstance(self.log_scale, nn.Parameter):
            res = res * self.log_scale.exp()
        elif self.log_scale == 'auto':
            res = res / math.sqrt(query.shape[-1])
        if self.bias is not None:
            res = res + self.bias
        res = res.masked_fill(~text_token_mask[:, None, :], float('-inf'))
        out = res.new_full((*res.shape[:-1], self.max_text_len), float('-inf'))
        out[..., :res.shape[-1]] = res
        return out
