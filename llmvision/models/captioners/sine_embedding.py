"""Sine embedding of 4-number boxes (DINO convention), the input of the captioner's position projection."""
import math

import torch


def box_sine_embedding(boxes: torch.Tensor, num_feats: int = 128,
                       temperature: float = 10000.0) -> torch.Tensor:
    """Embed normalized boxes with interleaved sin/cos features.

    Each of the 4 coordinates ``(c0, c1, c2, c3)`` (e.g. ``cx, cy, w, h``) is scaled by ``2*pi``,
    divided by ``temperature ** (2 * (i // 2) / num_feats)`` for ``i < num_feats`` and mapped to
    ``[sin(f_0), cos(f_1), sin(f_2), cos(f_3), ...]``. The per-coordinate embeddings are concatenated
    in DINO/LLMDet order ``(c1, c0, c2, c3)`` (``y, x, w, h``), so a position projection trained by
    LLMDet sees the same layout.

    Args:
        boxes: ``[..., 4]`` normalized boxes (any float dtype; computed in float32).
        num_feats: features per coordinate (128 -> output 512).
        temperature: frequency base.

    Returns:
        ``[..., 4 * num_feats]`` float32 embedding.
    """
    if boxes.shape[-1] != 4:
        raise ValueError(f'box_sine_embedding expects [..., 4] boxes, got shape {tuple(boxes.shape)}')
    if num_feats % 2:
        raise ValueError(f'num_feats must be even, got {num_feats}')
    boxes = boxes.float()
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=boxes.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / num_feats)
    angles = boxes[..., None] * (2 * math.pi) / dim_t               # [..., 4, num_feats]
    emb = torch.stack((angles[..., 0::2].sin(), angles[..., 1::2].cos()), dim=-1).flatten(-2)
    c0, c1, c2, c3 = emb.unbind(-2)                                  # each [..., num_feats]
    return torch.cat((c1, c0, c2, c3), dim=-1)
