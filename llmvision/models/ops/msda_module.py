"""Multi-scale deformable attention module (Deformable DETR), weight-compatible with mmcv/mmdet and HF.

Parameters ``sampling_offsets``, ``attention_weights``, ``value_proj``, ``output_proj`` have the same
names and shapes as ``mmcv.ops.MultiScaleDeformableAttention`` and HF
``MMGroundingDinoMultiscaleDeformableAttention``. Unlike mmcv, this module returns the projected output
WITHOUT dropout and residual (like HF): the caller adds the residual.
"""
import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from llmvision.registry import MODELS

from .msda_function import BACKENDS, multi_scale_deformable_attn


@MODELS.register_module()
class MultiScaleDeformableAttention(nn.Module):
    """Multi-scale deformable attention.

    Args:
        embed_dims: channels ``C`` of queries and values.
        num_heads: heads ``nH`` (``C % nH == 0``).
        num_levels: feature levels ``L``.
        num_points: sampling points ``P`` per head and level.
        backend: ``'auto'`` | ``'pytorch'`` | ``'triton'`` for the sampling core.
    """

    def __init__(self, embed_dims=256, num_heads=8, num_levels=4, num_points=4, backend='auto'):
        super().__init__()
        if embed_dims % num_heads != 0:
            raise ValueError(f'embed_dims ({embed_dims}) must be divisible by num_heads ({num_heads})')
        if backend not in BACKENDS:
            raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
        self.embed_dims = embed_dims
        self.num_heads = num_heads
        self.num_levels = num_levels
        self.num_points = num_points
        self.backend = backend
        self.sampling_offsets = nn.Linear(embed_dims, num_heads * num_levels * num_points * 2)
        self.attention_weights = nn.Linear(embed_dims, num_heads * num_levels * num_points)
        self.value_proj = nn.Linear(embed_dims, embed_dims)
        self.output_proj = nn.Linear(embed_dims, embed_dims)
        self.init_weights()

    @torch.no_grad()
    def init_weights(self):
        """Offsets: zero weight, bias = radial grid (head ``h`` points at angle ``2*pi*h/nH``, scaled so
        the larger coordinate is 1, times ``point + 1``); attention weights zero; xavier value/output."""
        nn.init.zeros_(self.sampling_offsets.weight)
        thetas = torch.arange(self.num_heads, dtype=torch.float32) * (2.0 * math.pi / self.num_heads)
        grid = torch.stack([thetas.cos(), thetas.sin()], -1)
        grid = grid / grid.abs().max(-1, keepdim=True)[0]
        grid = grid.view(self.num_heads, 1, 1, 2).repeat(1, self.num_levels, self.num_points, 1)
        grid = grid * torch.arange(1, self.num_points + 1, dtype=torch.float32).view(1, 1, -1, 1)
        self.sampling_offsets.bias.copy_(grid.reshape(-1))
        nn.init.zeros_(self.attention_weights.weight)
        nn.init.zeros_(self.attention_weights.bias)
        nn.init.xavier_uniform_(self.value_proj.weight)
        nn.init.zeros_(self.value_proj.bias)
        nn.init.xavier_uniform_(self.output_proj.weight)
        nn.init.zeros_(self.output_proj.bias)

    def sampling_locations(self, query, reference_points, spatial_shapes):
        """Locations ``[B, Q, nH, L, P, 2]`` and softmaxed weights ``[B, Q, nH, L, P]`` from ``query``.

        ``reference_points`` ``[B, Q, L, 2]`` (normalised points: offsets are in pixels of each level)
        or ``[B, Q, L, 4]`` (normalised cxcywh boxes: ``loc = xy + offset / P * wh * 0.5``).
        """
        batch, num_queries, _ = query.shape
        shape = (batch, num_queries, self.num_heads, self.num_levels, self.num_points)
        offsets = self.sampling_offsets(query).view(*shape, 2)
        weights = self.attention_weights(query).view(batch, num_queries, self.num_heads, -1)
        weights = F.softmax(weights, -1).view(shape)
        if reference_points.shape[-1] == 2:
            normalizer = torch.stack([spatial_shapes[..., 1], spatial_shapes[..., 0]], -1).to(offsets.dtype)
            locations = reference_points[:, :, None, :, None, :] + offsets / normalizer[None, None, None, :, None]
        elif reference_points.shape[-1] == 4:
            locations = (reference_points[:, :, None, :, None, :2]
                         + offsets / self.num_points * reference_points[:, :, None, :, None, 2:] * 0.5)
        else:
            raise ValueError('reference_points must end in 2 (points) or 4 (cxcywh boxes), got shape '
                             f'{tuple(reference_points.shape)}')
        return locations, weights

    def forward(self, query, value, reference_points, spatial_shapes, level_start_index,
                key_padding_mask=None, query_pos=None):
        """Attend from queries to multi-level values.

        Args:
            query: ``[B, Q, C]``.
            value: ``[B, V, C]`` flattened levels (``None``: use ``query``, self-attention).
            reference_points: ``[B, Q, L, 2]`` points or ``[B, Q, L, 4]`` cxcywh boxes, normalised.
            spatial_shapes: ``[L, 2]`` long ``(H, W)``; level_start_index: ``[L]`` long.
            key_padding_mask: ``[B, V]`` bool, True = padding (value zeroed), or None.
            query_pos: ``[B, Q, C]`` added to ``query`` before computing offsets/weights, or None.

        Returns:
            ``[B, Q, C]`` = ``output_proj(attention)``, no residual, no dropout.
        """
        if value is None:
            value = query
        if query_pos is not None:
            query = query + query_pos
        batch, num_queries, _ = query.shape
        num_value = value.shape[1]
        if reference_points.shape[:2] != (batch, num_queries) or reference_points.shape[2] != self.num_levels:
            raise ValueError(f'reference_points must be [B={batch}, Q={num_queries}, L={self.num_levels}, 2|4], '
                             f'got {tuple(reference_points.shape)}')
        value = self.value_proj(value)
        if key_padding_mask is not None:
            if tuple(key_padding_mask.shape) != (batch, num_value):
                raise ValueError(f'key_padding_mask must be [{batch}, {num_value}], got '
                                 f'{tuple(key_padding_mask.shape)}')
            value = value.masked_fill(key_padding_mask[..., None].bool(), 0.0)
        value = value.view(batch, num_value, self.num_heads, self.embed_dims // self.num_heads)
        locations, weights = self.sampling_locations(query, reference_points, spatial_shapes)
        out = multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights,
                                          backend=self.backend)
        return self.output_proj(out)

    def extra_repr(self):
        return (f'embed_dims={self.embed_dims}, num_heads={self.num_heads}, num_levels={self.num_levels}, '
                f'num_points={self.num_points}, backend={self.backend!r}')
