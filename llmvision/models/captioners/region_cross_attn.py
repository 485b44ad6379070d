"""Deformable cross-attention adapters inside the LLM: region tokens look back at the encoder memory.

The block is LLMDet's released one (REFERENCE.md section 9, ``use_lmm_cross_attn=True``): every ``every``-th
LLM decoder layer (0, 4, 8, ...) gets, at the region-token position of its input,

    ``q = down_proj(h)``                      hidden -> 256 (no norm before it)
    ``a = q + MSDA(q + pos(box), memory)``    multi-scale deformable attention over the encoder levels, the
                                              region's box as reference; the ``+ q`` is the identity that
                                              mmcv's ``MultiScaleDeformableAttention`` (the class the released
                                              code uses) adds inside its forward (``attn_residual=False`` drops it)
    ``h <- h + RMSNorm(up_proj(a))``          256 -> hidden, ``up_proj`` zero-initialised, RMSNorm AFTER it

so the LLM is unchanged at step 0 (``RMSNorm(0) = 0``). Parameter names: ``down_proj``, ``attn.{sampling_offsets,
attention_weights,value_proj,output_proj}``, ``up_proj``, ``norm.weight``; the box -> query-position head is
``ref_point_head`` (MLP 512 -> 256 -> 256, as released). The blocks live in this module (the LLM's own
state-dict keys are untouched) and run from forward pre-hooks on the LLM layers (applied before a layer, never
after the last one, where the region position's update could not reach any answer token). The per-batch context
travels as a keyword argument of the decoder call, so it is also there when gradient checkpointing recomputes a
layer.
"""
from typing import List, Optional, Sequence

import torch
import torch.nn as nn

from llmvision.models.ops import MultiScaleDeformableAttention
from llmvision.registry import MODELS

from .sine_embedding import box_sine_embedding

CONTEXT_KWARG = 'llmvision_region_xattn'


def padding_mask(spatial_shapes: torch.Tensor, valid_ratios: torch.Tensor) -> torch.Tensor:
    """``[L, 2]`` (H, W) and ``[B, L, 2]`` (w, h) valid shares -> ``[B, sum(H*W)]`` bool, True = padding.

    The valid part of each map is its top-left ``round(H * h) x round(W * w)`` block (the detector pads images at
    the bottom and the right), as :class:`ImageTokenizer` crops it.
    """
    masks = []
    for lvl, (h, w) in enumerate(spatial_shapes.tolist()):
        hv = (valid_ratios[:, lvl, 1] * h).round().clamp(min=1)[:, None, None]
        wv = (valid_ratios[:, lvl, 0] * w).round().clamp(min=1)[:, None, None]
        ys = torch.arange(h, device=valid_ratios.device)[None, :, None]
        xs = torch.arange(w, device=valid_ratios.device)[None, None, :]
        masks.append(((ys >= hv) | (xs >= wv)).flatten(1))
    return torch.cat(masks, 1)


class RMSNorm(nn.Module):
    """``x / sqrt(mean(x^2) + eps) * weight`` over the last dim, computed in float32 (Qwen2's RMSNorm)."""

    def __init__(self, dims: int, eps: float = 1e-6):
        super().__init__()
        self.eps = float(eps)
        self.weight = nn.Parameter(torch.ones(dims))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight.float()


class RegionCrossAttentionBlock(nn.Module):
    """``[R, hidden]`` region hidden states -> ``[R, hidden]`` update (zero at init).

    ``update = norm(up_proj(a))`` with ``a = q + attn(q, memory, box)`` and ``q = down_proj(hidden)``.

    Args:
        hidden_size: LLM hidden size.
        embed_dims: attention width (256, the detector's).
        num_heads / num_levels / num_points: MSDA settings.
        rms_norm_eps: epsilon of the RMSNorm after the up-projection (the LLM's ``rms_norm_eps``).
        attn_residual: add the down-projected query back to the attention output (mmcv MSDA's identity).
    """

    def __init__(self, hidden_size: int, embed_dims: int = 256, num_heads: int = 8, num_levels: int = 4,
                 num_points: int = 4, rms_norm_eps: float = 1e-6, attn_residual: bool = True):
        super().__init__()
        self.attn_residual = attn_residual
        self.down_proj = nn.Linear(hidden_size, embed_dims)
        self.attn = MultiScaleDeformableAttention(embed_dims, num_heads, num_levels, num_points)
        self.up_proj = nn.Linear(embed_dims, hidden_size)
        nn.init.zeros_(self.up_proj.weight)
        nn.init.zeros_(self.up_proj.bias)
        self.norm = RMSNorm(hidden_size, rms_norm_eps)

    def forward(self, hidden: torch.Tensor, ctx: dict) -> torch.Tensor:
        """``hidden [R, hidden]`` (any dtype) -> update ``[R, hidden]`` in float32."""
        query = self.down_proj(hidden.float())
        slots = ctx['slots']                                       # (image row [R], slot [R])
        padded = query.new_zeros(ctx['reference_points'].shape[:2] + (query.shape[-1],))
        padded = padded.index_put(slots, query)                    # [B_img, K_max, E]
        out = self.attn(padded, ctx['value'], ctx['reference_points'], ctx['spatial_shapes'],
                        ctx['level_start_index'], key_padding_mask=ctx.get('key_padding_mask'),
                        query_pos=ctx['query_pos'])[slots]
        if self.attn_residual:
            out = out + query
        return self.norm(self.up_proj(out))


@MODELS.register_module()
class RegionCrossAttentionAdapter(nn.Module):
    """The set of cross-attention blocks plus the box -> query-position head, installed on LLM layers.

    Args:
        hidden_size: LLM hidden size.
        num_llm_layers: number of LLM decoder layers.
        every: a block before each layer ``i`` with ``i % every == 0`` (24 layers, 4 -> 6 blocks).
        layers: explicit layer indices instead of ``every``.
        embed_dims / num_heads / num_levels / num_points: MSDA settings.
        pos_feats: sine features per box coordinate for the query position head.
        rms_norm_eps / attn_residual: see :class:`RegionCrossAttentionBlock`.
    """

    def __init__(self, hidden_size: int, num_llm_layers: int, every: int = 4,
                 layers: Optional[Sequence[int]] = None, embed_dims: int = 256, num_heads: int = 8,
                 num_levels: int = 4, num_points: int = 4, pos_feats: int = 128, rms_norm_eps: float = 1e-6,
                 attn_residual: bool = True):
        super().__init__()
        if layers is None:
            layers = list(range(0, num_llm_layers, every))
        layers = [int(i) for i in layers]
        if not layers or any(i < 0 or i >= num_llm_layers for i in layers):
            raise ValueError(f'region cross-attention layers {layers} must be non-empty and within '
                             f'[0, {num_llm_layers})')
        self.layer_ids = layers
        self.num_levels = num_levels
        self.embed_dims = embed_dims
        self.pos_feats = pos_feats
        self.ref_point_head = nn.Sequential(nn.Linear(4 * pos_feats, embed_dims), nn.ReLU(),
                                            nn.Linear(embed_dims, embed_dims))
        self.blocks = nn.ModuleList(
            RegionCrossAttentionBlock(hidden_size, embed_dims, num_heads, num_levels, num_points, rms_norm_eps,
                                      attn_residual)
            for _ in layers)
        self._handles = []

    def install(self, decoder_layers: nn.ModuleList):
        """Register the forward pre-hooks on ``decoder_layers`` (idempotent)."""
        for handle in self._handles:
            handle.remove()
        self._handles = [decoder_layers[layer_id].register_forward_pre_hook(self._make_hook(k), with_kwargs=True)
                         for k, layer_id in enumerate(self.layer_ids)]

    def _make_hook(self, block_index: int):
        def hook(module, args, kwargs):
            ctx = kwargs.get(CONTEXT_KWARG)
            if ctx is None:
                return None
            hidden = args[0] if args else kwargs['hidden_states']
            pos = ctx['position']
            if hidden.shape[1] <= pos:     # incremental decoding step: the region token is in the cache
                return None
            if hidden.shape[0] != ctx['num_regions']:
                raise RuntimeError(f'region cross-attention: batch of {hidden.shape[0]} sequences but the '
                                   f'context describes {ctx["num_regions"]} regions')
            update = self.blocks[block_index](hidden[:, pos], ctx).to(hidden.dtype)
            new = torch.cat((hidden[:, :pos], (hidden[:, pos] + update)[:, None], hidden[:, pos + 1:]), 1)
            if args:
                return (new,) + tuple(args[1:]), kwargs
            return args, dict(kwargs, hidden_states=new)
        return hook

    def build_context(self, position: int, memory_levels: List[torch.Tensor], image_index: torch.Tensor,
                      boxes: torch.Tensor, valid_ratios: Optional[torch.Tensor] = None) -> dict:
        """Per-batch context for the hooks.

        Args:
            position: sequence index of the region token.
            memory_levels: ``[B, C, H_l, W_l]`` encoder maps (``L`` = num_levels of them).
            image_index: ``[R]`` image of each region sequence.
            boxes: ``[R, 4]`` normalized cxcywh region boxes.
            valid_ratios: optional ``[B, L, 2]`` (w, h) un-padded share per level; scales the references and
                masks the padded border of each map out of the values (the released code passes the encoder's
                ``memory_mask``; the padding is the bottom/right border, so the ratios give it back exactly).

        Returns:
            dict with ``value [B_img, V, C]``, ``reference_points [B_img, K_max, L, 4]``,
            ``query_pos [B_img, K_max, E]``, ``key_padding_mask [B_img, V]`` (True = padding) or None,
            ``slots`` (image row, slot) index pair, shapes and indices.
        """
        if len(memory_levels) != self.num_levels:
            raise ValueError(f'region cross-attention expects {self.num_levels} memory levels, '
                             f'got {len(memory_levels)}')
        if memory_levels[0].shape[1] != self.embed_dims:
            raise ValueError(f'region cross-attention embed_dims={self.embed_dims} must equal the memory '
                             f'channels ({memory_levels[0].shape[1]})')
        images, rows = torch.unique(image_index, sorted=True, return_inverse=True)
        slot = torch.zeros_like(rows)
        for r in range(len(images)):
            sel = rows == r
            slot[sel] = torch.arange(int(sel.sum()), device=rows.device)
        k_max = int(slot.max()) + 1
        value = torch.cat([m.flatten(2).transpose(1, 2) for m in memory_levels], 1).float()[images]
        spatial_shapes = torch.tensor([m.shape[-2:] for m in memory_levels], dtype=torch.long,
                                      device=value.device)
        level_start_index = torch.cat((spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]))
        boxes = boxes.float()
        ref = boxes.new_zeros(len(images), k_max, 4)
        ref[rows, slot] = boxes
        ref = ref[:, :, None].expand(-1, -1, self.num_levels, -1)
        key_padding_mask = None
        if valid_ratios is not None:
            ratios = valid_ratios.float()[images]                               # [B_img, L, 2]
            ref = ref * torch.cat((ratios, ratios), -1)[:, None]
            key_padding_mask = padding_mask(spatial_shapes, ratios)
        query_pos = self.ref_point_head(box_sine_embedding(ref[:, :, 0], self.pos_feats))
        return dict(position=int(position), num_regions=len(image_index), value=value,
                    reference_points=ref, query_pos=query_pos, slots=(rows, slot), key_padding_mask=key_padding_mask,
                    spatial_shapes=spatial_shapes, level_start_index=level_start_index)
