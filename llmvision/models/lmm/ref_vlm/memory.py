"""Multi-scale maps -> one flattened decoder memory with 2-D sine positions and level embeddings."""
from typing import List, Sequence, Tuple

import torch
from torch import nn

from llmvision.models.layers.position_encoding import SinePositionalEncoding2D


class FlattenedMemory(nn.Module):
    """Project each level to ``embed_dims`` (1x1 conv + GroupNorm), flatten and concatenate.

    ``maps`` ``[B, C_l, H_l, W_l]`` -> ``(memory [B, L, D], pos [B, L, D])`` with
    ``L = sum_l H_l * W_l``; ``pos`` = 2-D sine encoding (DETR, normalised) + a learned level embedding.
    """

    def __init__(self, in_channels: Sequence[int], embed_dims: int = 256, num_groups: int = 32):
        super().__init__()
        groups = min(num_groups, embed_dims)
        while embed_dims % groups:
            groups -= 1
        self.proj = nn.ModuleList(nn.Sequential(nn.Conv2d(c, embed_dims, 1), nn.GroupNorm(groups, embed_dims))
                                  for c in in_channels)
        self.level_embed = nn.Parameter(torch.zeros(len(in_channels), embed_dims))
        nn.init.normal_(self.level_embed, std=0.02)
        self.pos = SinePositionalEncoding2D(num_feats=embed_dims // 2, temperature=10000)

    def forward(self, maps: List[torch.Tensor]) -> Tuple[torch.Tensor, torch.Tensor]:
        if len(maps) != len(self.proj):
            raise ValueError(f'FlattenedMemory: {len(maps)} maps for {len(self.proj)} projections')
        mem, pos = [], []
        for lvl, (x, proj) in enumerate(zip(maps, self.proj)):
            y = proj(x)
            b, _, h, w = y.shape
            p = self.pos(torch.zeros(b, h, w, dtype=torch.bool, device=y.device)).to(y.dtype)
            mem.append(y.flatten(2).transpose(1, 2))
            pos.append(p.flatten(2).transpose(1, 2) + self.level_embed[lvl])
        return torch.cat(mem, 1), torch.cat(pos, 1)
