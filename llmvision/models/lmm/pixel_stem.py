"""A per-pixel convolutional stem in front of a ViT's patch projection (tiny towers trained from scratch).

A ViT's patch embedding is linear in the patch's pixels, so "is there a red pixel in this patch" (an OR over
pixels) is not one of its features: with small objects on varying backgrounds a tiny CLIP tower trained from
scratch learns colours and shapes slowly (measured on the synthetic VQA set: the tiny LLaVA stayed at the text
prior for 2,500 steps, benchmarks/RESULTS.md). Early convolutions fix that (Xiao et al., 2021, "Early
convolutions help transformers see better"): :class:`PixelStemPatchEmbedding` runs 1x1 convolutions with GELU
on every pixel, then the usual ``patch x patch`` stride-``patch`` projection. It replaces
``embeddings.patch_embedding`` of a transformers ``CLIPVisionModel`` / ``SiglipVisionModel`` (see
:func:`llmvision.models.lmm.vision_tower.vision_model_from_config`, ``pixel_stem=``), so the tower keeps its
interface, position embeddings and hidden states. Real pretrained towers do not use it.
"""
from typing import Sequence

import torch
from torch import nn


class PixelStemPatchEmbedding(nn.Module):
    """``[N, 3, S, S]`` -> ``[N, C, S / patch, S / patch]``: per-pixel MLP (1x1 convs + GELU) then the patch
    projection (``Conv2d(k=patch, stride=patch, bias=False)``, as the ViT's own).

    Args:
        hidden_size: output channels ``C`` (the tower's width).
        patch_size: the tower's patch size.
        channels: widths of the 1x1 layers (e.g. ``(32, 32)``).
        in_channels: image channels.
    """

    def __init__(self, hidden_size: int, patch_size: int, channels: Sequence[int] = (32, 32), in_channels: int = 3):
        super().__init__()
        if not channels:
            raise ValueError('PixelStemPatchEmbedding: channels must name at least one 1x1 layer width')
        layers, c_in = [], in_channels
        for c in channels:
            layers += [nn.Conv2d(c_in, int(c), 1), nn.GELU()]
            c_in = int(c)
        self.pixel_mlp = nn.Sequential(*layers)
        self.proj = nn.Conv2d(c_in, hidden_size, patch_size, patch_size, bias=False)

    @property
    def weight(self) -> torch.Tensor:
        """The patch projection's weight (transformers' vision embeddings read ``patch_embedding.weight.dtype``)."""
        return self.proj.weight

    def forward(self, pixel_values: torch.Tensor) -> torch.Tensor:
        return self.proj(self.pixel_mlp(pixel_values))


def add_pixel_stem(tower: nn.Module, channels: Sequence[int] = (32, 32)) -> nn.Module:
    """Replace ``tower.embeddings.patch_embedding`` (CLIP / SigLIP vision, or their ``vision_model``) by a
    :class:`PixelStemPatchEmbedding` of the same width and patch size; returns ``tower``."""
    emb = getattr(getattr(tower, 'vision_model', tower), 'embeddings', None)
    old = getattr(emb, 'patch_embedding', None)
    if not isinstance(old, nn.Conv2d):
        raise TypeError(f'add_pixel_stem: {type(tower).__name__} has no embeddings.patch_embedding Conv2d to replace')
    stem = PixelStemPatchEmbedding(old.out_channels, old.kernel_size[0], channels, old.in_channels)
    emb.patch_embedding = stem.to(dtype=old.weight.dtype, device=old.weight.device)
    return tower
