"""Multi-scale deformable attention core, PyTorch reference (``grid_sample`` formulation).

Semantics follow Deformable DETR / mmcv / HF transformers: for every query, head, level and point, the
value map of that level is sampled bilinearly at ``sampling_locations`` (normalised ``(x, y)`` in
``[0, 1]``, pixel centres at ``(i + 0.5) / W``), with zero padding outside the map
(``align_corners=False``), and the samples are summed with ``attention_weights``.
"""
import torch
import torch.nn.functional as F


def multi_scale_deformable_attn_pytorch(value, spatial_shapes, level_start_index, sampling_locations,
                                        attention_weights):
    """Reference implementation, differentiable by autograd, any device and float dtype.

    Args:
        value: ``[B, V, nH, Dh]`` flattened multi-level values, ``V = sum_l H_l * W_l``.
        spatial_shapes: ``[L, 2]`` long, ``(H_l, W_l)`` per level.
        level_start_index: ``[L]`` long, offset of each level in ``V`` (unused here beyond validation
            by the caller; levels are split by ``spatial_shapes``).
        sampling_locations: ``[B, Q, nH, L, P, 2]`` normalised ``(x, y)``.
        attention_weights: ``[B, Q, nH, L, P]``.

    Returns:
        ``[B, Q, nH * Dh]``.
    """
    del level_start_index  # levels are contiguous; the split sizes come from spatial_shapes
    batch, _, num_heads, head_dim = value.shape
    _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
    shapes = [(int(h), int(w)) for h, w in spatial_shapes.tolist()]
    value_list = value.split([h * w for h, w in shapes], dim=1)
    grids = 2 * sampling_locations - 1
    sampled = []
    for level, (height, width) in enumerate(shapes):
        # [B, H*W, nH, Dh] -> [B*nH, Dh, H, W]
        value_l = value_list[level].permute(0, 2, 3, 1).reshape(batch * num_heads, head_dim, height, width)
        # [B, Q, nH, P, 2] -> [B*nH, Q, P, 2]
        grid_l = grids[:, :, :, level].transpose(1, 2).flatten(0, 1)
        # -> [B*nH, Dh, Q, P]
        sampled.append(F.grid_sample(value_l, grid_l, mode='bilinear', padding_mode='zeros',
                                     align_corners=False))
    # [B, Q, nH, L, P] -> [B*nH, 1, Q, L*P]
    weights = attention_weights.transpose(1, 2).reshape(batch * num_heads, 1, num_queries,
                                                        num_levels * num_points)
    # [B*nH, Dh, Q, L*P] -> [B*nH, Dh, Q]
    out = (torch.stack(sampled, dim=-2).flatten(-2) * weights).sum(-1)
    return out.view(batch, num_heads * head_dim, num_queries).transpose(1, 2).contiguous()
