"""Two-stage proposals: one anchor box per encoder token (Deformable DETR ``gen_encoder_output_proposals``)."""
from typing import Sequence, Tuple

import torch


def encoder_output_proposals(memory: torch.Tensor, padding_mask: torch.Tensor,
                             spatial_shapes: Sequence[Tuple[int, int]]
                             ) -> Tuple[torch.Tensor, torch.Tensor]:
    """Anchor ``(cx, cy, 0.05 * 2**lvl, same)`` at each valid pixel centre, in inverse-sigmoid space.

    Args: memory ``[B, N, C]``; padding_mask ``[B, N]`` bool True = padding; spatial shapes per level.
    Returns ``(memory [B, N, C] with padded / invalid tokens zeroed, proposals [B, N, 4])`` where a
    padded or near-border (any coordinate outside (0.01, 0.99)) proposal is ``+inf``.
    """
    bsz = memory.shape[0]
    proposals, start = [], 0
    for lvl, (h, w) in enumerate(spatial_shapes):
        mask = padding_mask[:, start:start + h * w].view(bsz, h, w)
        valid_h = (~mask[:, :, 0]).sum(1)
        valid_w = (~mask[:, 0, :]).sum(1)
        gy, gx = torch.meshgrid(
            torch.linspace(0, h - 1, h, dtype=memory.dtype, device=memory.device),
            torch.linspace(0, w - 1, w, dtype=memory.dtype, device=memory.device), indexing='ij')
        grid = torch.stack([gx, gy], -1)
        scale = torch.stack([valid_w, valid_h], -1).view(bsz, 1, 1, 2).to(memory.dtype)
        grid = (grid[None].expand(bsz, -1, -1, -1) + 0.5) / scale
        wh = torch.ones_like(grid) * 0.05 * (2.0 ** lvl)
        proposals.append(torch.cat([grid, wh], -1).view(bsz, -1, 4))
        start += h * w
    proposals = torch.cat(proposals, 1)
    valid = ((proposals > 0.01) & (proposals < 0.99)).all(-1, keepdim=True)
    proposals = torch.log(proposals / (1 - proposals))
    proposals = proposals.masked_fill(padding_mask[..., None], float('inf'))
    proposals = proposals.masked_fill(~valid, float('inf'))
    memory = memory.masked_fill(padding_mask[..., None], 0.0).masked_fill(~valid, 0.0)
    return memory, proposals
