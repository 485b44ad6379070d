"""Multi-scale deformable attention core as Triton kernels (forward + backward), for CUDA tensors.

Same semantics as :func:`llmvision.models.ops.msda_pytorch.multi_scale_deformable_attn_pytorch`
(bilinear, zero padding, ``align_corners=False``): a location ``(x, y)`` on level ``l`` maps to the
pixel coordinate ``(x * W_l - 0.5, y * H_l - 0.5)``.

Layout: one program handles ``BLOCK_Q`` (batch, query) rows of one head and all ``Dh`` channels; it
loops over levels (rolled loop) and points (unrolled in the forward, rolled in the backward), gathers the four
corner rows of ``Dh`` contiguous values and accumulates in fp32. The backward kernel recomputes the samples, writes the
gradients of the locations and weights directly (each (row, head, level, point) belongs to one
program) and scatters the value gradient with fp32 atomics.

With ``TRITON_INTERPRET=1`` set before import, the kernels also run on CPU tensors (used by tests).
"""
import os

import torch
import triton
import triton.language as tl


def interpreter_enabled():
    """Whether Triton runs kernels in its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get('TRITON_INTERPRET', '0') not in ('', '0')


@triton.jit
def _load_corner(value_ptr, row_base, hi, wi, height, width, col, row_mask, d, d_mask):
    """Gather value rows at integer pixel ``(hi, wi)``; returns ``([BQ, BD] fp32, [BQ] valid, [BQ, BD] ptr offs)``."""
    valid = row_mask & (hi >= 0) & (hi < height) & (wi >= 0) & (wi < width)
    offs = ((row_base + hi * width + wi) * col)[:, None] + d[None, :]
    vals = tl.load(value_ptr + offs, mask=valid[:, None] & d_mask[None, :], other=0.0).to(tl.float32)
    return vals, valid, offs


@triton.jit
def _pixel_coords(loc_ptr, idx, row_mask, height_f, width_f):
    """Location -> clamped pixel coordinates and bilinear parts for each row ([BQ] tensors)."""
    x = tl.load(loc_ptr + 2 * idx, mask=row_mask, other=0.0).to(tl.float32)
    y = tl.load(loc_ptr + 2 * idx + 1, mask=row_mask, other=0.0).to(tl.float32)
    # clamping keeps far-away points out of every corner (zero contribution, zero gradient) while
    # making the float -> int conversion safe
    w_im = tl.minimum(tl.maximum(x * width_f - 0.5, -2.0), width_f + 1.0)
    h_im = tl.minimum(tl.maximum(y * height_f - 0.5, -2.0), height_f + 1.0)
    h_low_f = tl.floor(h_im)
    w_low_f = tl.floor(w_im)
    lh = h_im - h_low_f
    lw = w_im - w_low_f
    return h_low_f.to(tl.int64), w_low_f.to(tl.int64), lh, lw


@triton.jit
def _msda_fwd_kernel(value_ptr, shapes_ptr, starts_ptr, loc_ptr, attn_ptr, out_ptr,
                     total_rows, num_queries, num_value, num_heads, head_dim,
                     NUM_LEVELS: tl.constexpr, NUM_POINTS: tl.constexpr,
                     BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    head = tl.program_id(1)
    row_mask = rows < total_rows
    rows64 = rows.to(tl.int64)
    batch = rows64 // num_queries
    d = tl.arange(0, BLOCK_D)
    d_mask = d < head_dim
    col = num_heads * head_dim
    value_head_ptr = value_ptr + head * head_dim
    acc = tl.zeros([BLOCK_Q, BLOCK_D], dtype=tl.float32)
    sample_base = (rows64 * num_heads + head) * (NUM_LEVELS * NUM_POINTS)
    for level in range(NUM_LEVELS):
        height = tl.load(shapes_ptr + 2 * level).to(tl.int64)
        width = tl.load(shapes_ptr + 2 * level + 1).to(tl.int64)
        start = tl.load(starts_ptr + level).to(tl.int64)
        height_f = height.to(tl.float32)
        width_f = width.to(tl.float32)
        row_base = batch * num_value + start
        for point in tl.static_range(NUM_POINTS):
            idx = sample_base + level * NUM_POINTS + point
            weight = tl.load(attn_ptr + idx, mask=row_mask, other=0.0).to(tl.float32)
            h_low, w_low, lh, lw = _pixel_coords(loc_ptr, idx, row_mask, height_f, width_f)
            hh = 1.0 - lh
            hw = 1.0 - lw
            v1, _, _ = _load_corner(value_head_ptr, row_base, h_low, w_low, height, width, col,
                                    row_mask, d, d_mask)
            v2, _, _ = _load_corner(value_head_ptr, row_base, h_low, w_low + 1, height, width, col,
                                    row_mask, d, d_mask)
            v3, _, _ = _load_corner(value_head_ptr, row_base, h_low + 1, w_low, height, width, col,
                                    row_mask, d, d_mask)
            v4, _, _ = _load_corner(value_head_ptr, row_base, h_low + 1, w_low + 1, height, width, col,
                                    row_mask, d, d_mask)
            sampled = ((hh * hw)[:, None] * v1 + (hh * lw)[:, None] * v2
                       + (lh * hw)[:, None] * v3 + (lh * lw)[:, None] * v4)
            acc += weight[:, None] * sampled
    out_offs = ((rows64 * num_heads + head) * head_dim)[:, None] + d[None, :]
    tl.store(out_ptr + out_offs, acc.to(out_ptr.dtype.element_ty),
             mask=row_mask[:, None] & d_mask[None, :])


@triton.jit
def _msda_bwd_kernel(value_ptr, shapes_ptr, starts_ptr, loc_ptr, attn_ptr, grad_out_ptr,
                     grad_value_ptr, grad_loc_ptr, grad_attn_ptr,
                     total_rows, num_queries, num_value, num_heads, head_dim,
                     NUM_LEVELS: tl.constexpr, NUM_POINTS: tl.constexpr,
                     BLOCK_Q: tl.constexpr, BLOCK_D: tl.constexpr):
    rows = tl.program_id(0) * BLOCK_Q + tl.arange(0, BLOCK_Q)
    head = tl.program_id(1)
    row_mask = rows < total_rows
    rows64 = rows.to(tl.int64)
    batch = rows64 // num_queries
    d = tl.arange(0, BLOCK_D)
    d_mask = d < head_dim
    mask2 = row_mask[:, None] & d_mask[None, :]
    col = num_heads * head_dim
    value_head_ptr = value_ptr + head * head_dim
    grad_value_head_ptr = grad_value_ptr + head * head_dim
    out_offs = ((rows64 * num_heads + head) * head_dim)[:, None] + d[None, :]
    grad_out = tl.load(grad_out_ptr + out_offs, mask=mask2, other=0.0).to(tl.float32)
    sample_base = (rows64 * num_heads + head) * (NUM_LEVELS * NUM_POINTS)
    for level in range(NUM_LEVELS):
        height = tl.load(shapes_ptr + 2 * level).to(tl.int64)
        width = tl.load(shapes_ptr + 2 * level + 1).to(tl.int64)
        start = tl.load(starts_ptr + level).to(tl.int64)
        height_f = height.to(tl.float32)
        width_f = width.to(tl.float32)
        row_base = batch * num_value + start
        for point in range(NUM_POINTS):
            idx = sample_base + level * NUM_POINTS + point
            weight = tl.load(attn_ptr + idx, mask=row_mask, other=0.0).to(tl.float32)
            h_low, w_low, lh, lw = _pixel_coords(loc_ptr, idx, row_mask, height_f, width_f)
            hh = 1.0 - lh
            hw = 1.0 - lw
            v1, ok1, offs1 = _load_corner(value_head_ptr, row_base, h_low, w_low, height, width, col,
                                          row_mask, d, d_mask)
            v2, ok2, offs2 = _load_corner(value_head_ptr, row_base, h_low, w_low + 1, height, width, col,
                                          row_mask, d, d_mask)
            v3, ok3, offs3 = _load_corner(value_head_ptr, row_base, h_low + 1, w_low, height, width, col,
                                          row_mask, d, d_mask)
            v4, ok4, offs4 = _load_corner(value_head_ptr, row_base, h_low + 1, w_low + 1, height, width,
                                          col, row_mask, d, d_mask)
            w1 = hh * hw
            w2 = hh * lw
            w3 = lh * hw
            w4 = lh * lw
            sampled = w1[:, None] * v1 + w2[:, None] * v2 + w3[:, None] * v3 + w4[:, None] * v4
            tl.store(grad_attn_ptr + idx, tl.sum(grad_out * sampled, axis=1), mask=row_mask)
            # d sampled / d lw and d sampled / d lh (bilinear partial derivatives)
            d_lw = hh[:, None] * (v2 - v1) + lh[:, None] * (v4 - v3)
            d_lh = hw[:, None] * (v3 - v1) + lw[:, None] * (v4 - v2)
            grad_x = weight * tl.sum(grad_out * d_lw, axis=1) * width_f
            grad_y = weight * tl.sum(grad_out * d_lh, axis=1) * height_f
            tl.store(grad_loc_ptr + 2 * idx, grad_x, mask=row_mask)
            tl.store(grad_loc_ptr + 2 * idx + 1, grad_y, mask=row_mask)
            weighted = weight[:, None] * grad_out
            tl.atomic_add(grad_value_head_ptr + offs1, w1[:, None] * weighted,
                          mask=ok1[:, None] & d_mask[None, :])
            tl.atomic_add(grad_value_head_ptr + offs2, w2[:, None] * weighted,
                          mask=ok2[:, None] & d_mask[None, :])
            tl.atomic_add(grad_value_head_ptr + offs3, w3[:, None] * weighted,
                          mask=ok3[:, None] & d_mask[None, :])
            tl.atomic_add(grad_value_head_ptr + offs4, w4[:, None] * weighted,
                          mask=ok4[:, None] & d_mask[None, :])


def _launch_config(head_dim):
    """``(BLOCK_Q, BLOCK_D)``: 512-element tiles. Checked with ``ptxas -v`` for sm_90 (Dh 32, L 4, P 4,
    4 warps): forward ~110 and backward ~140 registers, no spills; 2048-element tiles spill."""
    block_d = triton.next_power_of_2(max(int(head_dim), 1))
    block_q = max(1, min(64, 512 // block_d))
    return block_q, block_d


class _MSDATriton(torch.autograd.Function):
    """Autograd wrapper: inputs must already be contiguous and shape-checked by the dispatcher."""

    @staticmethod
    def forward(ctx, value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
        batch, num_value, num_heads, head_dim = value.shape
        _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
        out = value.new_empty(batch, num_queries, num_heads, head_dim)
        block_q, block_d = _launch_config(head_dim)
        total_rows = batch * num_queries
        grid = (triton.cdiv(total_rows, block_q), num_heads)
        _msda_fwd_kernel[grid](value, spatial_shapes, level_start_index, sampling_locations,
                               attention_weights, out, total_rows, num_queries, num_value, num_heads,
                               head_dim, NUM_LEVELS=num_levels, NUM_POINTS=num_points,
                               BLOCK_Q=block_q, BLOCK_D=block_d)
        ctx.save_for_backward(value, spatial_shapes, level_start_index, sampling_locations,
                              attention_weights)
        return out.view(batch, num_queries, num_heads * head_dim)

    @staticmethod
    def backward(ctx, grad_out):
        value, spatial_shapes, level_start_index, sampling_locations, attention_weights = ctx.saved_tensors
        batch, num_value, num_heads, head_dim = value.shape
        _, num_queries, _, num_levels, num_points, _ = sampling_locations.shape
        grad_out = grad_out.contiguous()
        grad_value = torch.zeros(value.shape, dtype=torch.float32, device=value.device)
        grad_loc = torch.empty(sampling_locations.shape, dtype=torch.float32, device=value.device)
        grad_attn = torch.empty(attention_weights.shape, dtype=torch.float32, device=value.device)
        block_q, block_d = _launch_config(head_dim)
        total_rows = batch * num_queries
        grid = (triton.cdiv(total_rows, block_q), num_heads)
        _msda_bwd_kernel[grid](value, spatial_shapes, level_start_index, sampling_locations,
                               attention_weights, grad_out, grad_value, grad_loc, grad_attn, total_rows,
                               num_queries, num_value, num_heads, head_dim, NUM_LEVELS=num_levels,
                               NUM_POINTS=num_points, BLOCK_Q=block_q, BLOCK_D=block_d)
        return (grad_value.to(value.dtype), None, None, grad_loc.to(sampling_locations.dtype),
                grad_attn.to(attention_weights.dtype))


def multi_scale_deformable_attn_triton(value, spatial_shapes, level_start_index, sampling_locations,
                                       attention_weights):
    """Triton MSDA; same arguments and result (``[B, Q, nH * Dh]``) as the PyTorch reference.

    Computes in fp32 whatever the input dtypes; the output has ``value``'s dtype and each gradient its
    input's dtype. Tensors must be on CUDA (or on CPU with ``TRITON_INTERPRET=1``).
    """
    return _MSDATriton.apply(value.contiguous(), spatial_shapes.contiguous(),
                             level_start_index.contiguous(), sampling_locations.contiguous(),
                             attention_weights.contiguous())
