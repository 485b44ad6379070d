"""Image-level visual tokens from encoder memory maps (LLMDet: 20x20 stride-32 + separator + 27x27 stride-16)."""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmvision.registry import MODELS
from llmvision.structures.boxes import xyxy_to_cxcywh

from .projector import VisualProjector


def grid_cell_boxes(size: int, box_format: str = 'cxcywh') -> torch.Tensor:
    """Boxes of the cells of a ``size x size`` grid over the unit square, row-major: ``[size*size, 4]``."""
    edges = torch.linspace(0, 1, size + 1)
    y0, x0 = torch.meshgrid(edges[:-1], edges[:-1], indexing='ij')
    y1, x1 = torch.meshgrid(edges[1:], edges[1:], indexing='ij')
    boxes = torch.stack((x0, y0, x1, y1), dim=-1).flatten(0, 1)
    return xyxy_to_cxcywh(boxes) if box_format == 'cxcywh' else boxes


@MODELS.register_module()
class ImageTokenizer(nn.Module):
    """Turn a few encoder memory levels into a fixed number of LLM tokens.

    For each selected level ``levels[j]`` the map (cropped to its valid, un-padded part) is resized to
    ``sizes[j] x sizes[j]`` and each cell becomes ``projector(feature) + pos_proj(sine(cell box))``; a
    learned separator token sits between consecutive levels. Default (levels=(2, 1), sizes=(20, 27))
    gives 400 + 1 + 729 = 1130 tokens, as LLMDet.

    Args:
        feat_dims: channels of the memory maps (256).
        hidden_size: LLM hidden size.
        levels: indices into ``memory_levels`` (strides 8,16,32,64 -> 2 is stride 32, 1 is stride 16).
        sizes: output grid side per level.
        resize_mode: ``'bilinear'`` (LLMDet, align_corners=False) or ``'adaptive_avg'``.
        box_format: coordinate layout fed to the sine embedding, ``'cxcywh'`` or ``'xyxy'`` (LLMDet).
    """

    def __init__(self, feat_dims: int, hidden_size: int, levels: Sequence[int] = (2, 1),
                 sizes: Sequence[int] = (20, 27), resize_mode: str = 'bilinear',
                 box_format: str = 'cxcywh', pos_feats: int = 128):
        super().__init__()
        if len(levels) != len(sizes) or not levels:
            raise ValueError(f'levels {levels} and sizes {sizes} must be non-empty and of equal length')
        if resize_mode not in ('bilinear', 'adaptive_avg'):
            raise ValueError(f"resize_mode must be 'bilinear' or 'adaptive_avg', got {resize_mode!r}")
        if box_format not in ('cxcywh', 'xyxy'):
            raise ValueError(f"box_format must be 'cxcywh' or 'xyxy', got {box_format!r}")
        self.feat_dims = int(feat_dims)
        self.levels = tuple(int(x) for x in levels)
        self.sizes = tuple(int(x) for x in sizes)
        self.resize_mode = resize_mode
        self.projector = VisualProjector(feat_dims, hidden_size, pos_feats)
        self.separators = nn.Parameter(torch.zeros(len(levels) - 1, hidden_size))
        nn.init.normal_(self.separators, std=0.02)
        for j, s in enumerate(self.sizes):
            self.register_buffer(f'grid_boxes_{j}', grid_cell_boxes(s, box_format), persistent=False)

    @property
    def num_tokens(self) -> int:
        """Tokens per image: ``sum(size**2) + len(levels) - 1``."""
        return sum(s * s for s in self.sizes) + len(self.sizes) - 1

    def _resize(self, fmap: torch.Tensor, size: int) -> torch.Tensor:
        if self.resize_mode == 'bilinear':
            return F.interpolate(fmap, size=(size, size), mode='bilinear', align_corners=False)
        return F.adaptive_avg_pool2d(fmap, (size, size))

    def forward(self, memory_levels: List[torch.Tensor],
                valid_ratios: Optional[torch.Tensor] = None) -> torch.Tensor:
        """Build the image tokens.

        Args:
            memory_levels: list of ``[B, C, H_l, W_l]`` maps.
            valid_ratios: optional ``[B, L, 2]`` (w, h) share of each map that is not padding (mmdet
                convention); the padded border is cropped before resizing.

        Returns:
            ``[B, num_tokens, hidden_size]`` in the projector's dtype.
        """
        if max(self.levels) >= len(memory_levels):
            raise ValueError(f'ImageTokenizer needs memory levels {self.levels}, got {len(memory_levels)} maps')
        batch = memory_levels[0].shape[0]
        parts = []
        for j, (lvl, size) in enumerate(zip(self.levels, self.sizes)):
            fmap = memory_levels[lvl]
            if fmap.dim() != 4 or fmap.shape[1] != self.feat_dims:
                raise ValueError(f'ImageTokenizer: memory level {lvl} must be [B, {self.feat_dims}, H, W], '
                                 f'got {tuple(fmap.shape)}')
            if valid_ratios is None:
                resized = self._resize(fmap.float(), size)
            else:
                h, w = fmap.shape[-2:]
                crops = []
                for b in range(batch):
                    hv = max(1, int(round(h * float(valid_ratios[b, lvl, 1]))))
                    wv = max(1, int(round(w * float(valid_ratios[b, lvl, 0]))))
                    crops.append(self._resize(fmap[b:b + 1, :, :hv, :wv].float(), size))
                resized = torch.cat(crops)
            feats = resized.flatten(2).transpose(1, 2)                     # [B, size*size, C]
            boxes = getattr(self, f'grid_boxes_{j}').expand(batch, -1, -1)
            parts.append(self.projector(feats, boxes))
            if j < len(self.sizes) - 1:
                parts.append(self.separators[j].to(parts[-1].dtype).expand(batch, 1, -1))
        return torch.cat(parts, dim=1)
