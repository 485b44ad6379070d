"""Sine position encodings: 2-D maps from a padding mask, and per-coordinate encodings of points/boxes."""
import math

import torch
from torch import nn

from llmvision.registry import MODELS


@MODELS.register_module()
class SinePositionalEncoding2D(nn.Module):
    """DETR sine encoding of a ``[B, H, W]`` padding mask -> ``[B, 2 * num_feats, H, W]`` (y first, then x).

    Coordinates are cumulative counts of valid pixels, normalised by the valid extent (``normalize``),
    times ``2 * pi``. Grounding-DINO uses ``num_feats=128, temperature=20``.
    """

    def __init__(self, num_feats: int = 128, temperature: float = 20, normalize: bool = True,
                 scale: float = 2 * math.pi, eps: float = 1e-6, offset: float = 0.0):
        super().__init__()
        self.num_feats, self.temperature, self.normalize = num_feats, temperature, normalize
        self.scale, self.eps, self.offset = scale, eps, offset

    def forward(self, mask: torch.Tensor) -> torch.Tensor:
        """``mask [B, H, W]`` bool, True = padding -> ``[B, 2 * num_feats, H, W]`` float32."""
        not_mask = (~mask).float()
        y_embed = not_mask.cumsum(1)
        x_embed = not_mask.cumsum(2)
        if self.normalize:
            y_embed = (y_embed + self.offset) / (y_embed[:, -1:, :] + self.eps) * self.scale
            x_embed = (x_embed + self.offset) / (x_embed[:, :, -1:] + self.eps) * self.scale
        dim_t = torch.arange(self.num_feats, dtype=torch.float32, device=mask.device)
        dim_t = self.temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / self.num_feats)
        pos_x = x_embed[..., None] / dim_t
        pos_y = y_embed[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


def coordinate_to_encoding(coords: torch.Tensor, num_feats: int = 128,
                           temperature: float = 10000, scale: float = 2 * math.pi) -> torch.Tensor:
    """Sine-encode each coordinate: ``[..., n]`` in ``[0, 1]`` -> ``[..., n * num_feats]``.

    Order of the blocks: ``(y, x, w, h)`` for ``(x, y, w, h)`` input (DETR convention: the first two
    coordinates are swapped); a single coordinate (text position ids) is encoded as is.
    """
    dim_t = torch.arange(num_feats, dtype=torch.float32, device=coords.device)
    dim_t = temperature ** (2 * torch.div(dim_t, 2, rounding_mode='floor') / num_feats)
    embs = []
    for c in coords.unbind(-1):
        e = c[..., None].float() * scale / dim_t
        embs.append(torch.stack((e[..., 0::2].sin(), e[..., 1::2].cos()), dim=-1).flatten(-2))
    if len(embs) >= 2:
        embs[0], embs[1] = embs[1], embs[0]
    return torch.cat(embs, dim=-1).to(coords.dtype if coords.is_floating_point() else torch.float32)
