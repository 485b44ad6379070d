"""LLaVolta's visual context compressor: run a transformers decoder (LLaMA / Qwen2 layout) layer by
layer and average-pool the visual tokens just before layer ``K``.

``embed -> layers[:K] (all tokens) -> pool visual spans by S -> layers[K:] (shorter sequence) -> norm``.
After the pooling the rotary embeddings are recomputed from the pooled positions (exact half-integer
window means, see :mod:`.visual_pooling`) and the causal + padding mask is rebuilt for the shorter
sequence with transformers' own ``create_causal_mask`` (so eager, SDPA and flash attention all get the
mask form they expect). ``K <= 0`` pools at the projector output (before layer 0). Decoder layers are
called as modules, so ``llm.gradient_checkpointing_enable()`` applies to them unchanged.

KV cache (generation with compression kept at inference): layers ``< K`` cache the full prompt,
layers ``>= K`` the pooled one. :class:`PooledKVCache` carries the pooled prompt's attention mask and
next positions from the prefill call to the decoding calls (it is the cache object the caller already
passes back), so batched, left-padded generation stays consistent with the shorter sequence.
"""
from dataclasses import dataclass
from typing import List, Optional

import torch
from torch import nn
from transformers.cache_utils import DynamicCache
from transformers.masking_utils import create_causal_mask, create_sliding_window_causal_mask

from llmvision.registry import MODELS

from .visual_pooling import pool_visual_spans


def decoder_of(llm: nn.Module) -> nn.Module:
    """The decoder stack (``embed_tokens``, ``layers``, ``norm``, ``rotary_emb``) of a causal LM, a
    peft-wrapped one or the decoder itself."""
    if hasattr(llm, 'get_base_model'):
        llm = llm.get_base_model()
    for _ in range(3):
        if all(hasattr(llm, n) for n in ('layers', 'norm', 'rotary_emb')):
            return llm
        llm = getattr(llm, 'model', None)
        if llm is None:
            break
    raise TypeError('VisualTokenCompressor needs a LLaMA/Qwen2-style decoder (layers, norm, rotary_emb)')


class PooledKVCache(DynamicCache):
    """``DynamicCache`` whose layers ``>= layer`` hold the pooled sequence.

    Attributes:
        layer: the layer where pooling happened (None: no pooling, plain cache).
        full_attention_mask: ``[B, T_past]`` mask of the keys cached by layers ``< layer``.
        pooled_attention_mask: ``[B, T'_past]`` mask of the keys cached by layers ``>= layer``.
        next_position: ``[B]`` float64, position of the next token of each row.
    """

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.layer: Optional[int] = None
        self.full_attention_mask: Optional[torch.Tensor] = None
        self.pooled_attention_mask: Optional[torch.Tensor] = None
        self.next_position: Optional[torch.Tensor] = None

    def _rows(self, fn) -> None:
        for name in ('full_attention_mask', 'pooled_attention_mask', 'next_position'):
            value = getattr(self, name)
            if value is not None:
                setattr(self, name, fn(value))

    def reorder_cache(self, beam_idx: torch.LongTensor):
        super().reorder_cache(beam_idx)
        self._rows(lambda t: t.index_select(0, beam_idx.to(t.device)))

    def batch_repeat_interleave(self, repeats: int):
        super().batch_repeat_interleave(repeats)
        self._rows(lambda t: t.repeat_interleave(repeats, 0))

    def batch_select_indices(self, indices: torch.Tensor):
        super().batch_select_indices(indices)
        self._rows(lambda t: t[indices])


@dataclass
class CompressedLLMOutput:
    """What :meth:`VisualTokenCompressor.forward` returns (``T'`` = sequence length after pooling).

    Attributes:
        hidden_states: ``[B, T', H]`` last hidden states (after the final norm).
        attention_mask, labels, position_ids, visual_mask: ``[B, T']`` for the surviving tokens
            (labels None when none were given; position ids float64).
        past_key_values: the cache (a :class:`PooledKVCache`) when ``use_cache``.
        visual_tokens_per_layer: ``[N]`` long, visual tokens each decoder layer processed (whole batch).
    """
    hidden_states: torch.Tensor
    attention_mask: torch.Tensor
    labels: Optional[torch.Tensor]
    position_ids: torch.Tensor
    visual_mask: torch.Tensor
    past_key_values: Optional[PooledKVCache]
    visual_tokens_per_layer: torch.Tensor


def compression_ratio(num_layers: int, layer: Optional[int], stride: int) -> float:
    """LLaVolta's ``CR = N*L / ((N-K)*L/S + K*L)`` (``K <= 0`` counts as 0; None or ``S = 1``: 1)."""
    if layer is None or stride == 1:
        return 1.0
    k = min(max(layer, 0), num_layers)
    return num_layers / ((num_layers - k) / stride + k)


@MODELS.register_module()
class VisualTokenCompressor(nn.Module):
    """Parameter-free staged visual-token average pooling inside the LLM (LLaVolta).

    Args:
        layer: ``K``, pool just before decoder layer ``K`` (``-1`` or 0: at the projector output);
            None disables compression (the stage set by :class:`CompressionScheduleHook` overrides it).
        stride: ``S``, pooling kernel = stride (1 = no compression).
        keep_at_inference: keep the (layer, stride) setting in eval mode (LLaVolta's heavy / light
            presets); otherwise eval runs uncompressed (the staged presets).
    """

    def __init__(self, layer: Optional[int] = None, stride: int = 1, keep_at_inference: bool = False):
        super().__init__()
        self.keep_at_inference = keep_at_inference
        self.set_stage(layer, stride)

    def set_stage(self, layer: Optional[int], stride: int = 1) -> None:
        """Switch the training setting (called by the schedule hook); ``layer=None`` = uncompressed."""
        if stride < 1:
            raise ValueError(f'stride must be >= 1, got {stride}')
        self.layer = layer
        self.stride = int(stride)

    def active(self):
        """``(K, S)`` used by the next forward, or None when it runs uncompressed (``S = 1`` still runs the
        pooling step, a numerical no-op that the exactness test relies on)."""
        if self.layer is None or (not self.training and not self.keep_at_inference):
            return None
        return max(int(self.layer), 0), self.stride

    def compression_ratio(self, num_layers: int) -> float:
        """CR of the active setting for an ``num_layers``-layer LLM (1.0 when uncompressed)."""
        setting = self.active()
        return 1.0 if setting is None else compression_ratio(num_layers, *setting)

    def extra_repr(self) -> str:
        return f'layer={self.layer}, stride={self.stride}, keep_at_inference={self.keep_at_inference}'

    def forward(self, llm: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                position_ids: Optional[torch.Tensor], visual_mask: torch.Tensor,
                labels: Optional[torch.Tensor] = None, span_starts: Optional[torch.Tensor] = None,
                past_key_values: Optional[PooledKVCache] = None, use_cache: bool = False) -> CompressedLLMOutput:
        """Run the decoder of ``llm`` on a multimodal batch, pooling its visual spans before layer K.

        Args:
            llm: causal LM (transformers, optionally peft-wrapped) or its decoder.
            inputs_embeds: ``[B, T, H]``.
            attention_mask: ``[B, T]``; while decoding only its last ``T`` columns are read (the
                history's masks, full and pooled, live in the cache), so ``[B, T]`` or the loop's
                ``[B, T_past + T]`` both work.
            position_ids: ``[B, T]``; None while decoding continues from the cache's next positions.
            visual_mask: ``[B, T]`` bool.
            labels: optional ``[B, T]`` (gathered to the surviving tokens).
            span_starts: optional ``[B, T]`` bool, first token of each image (see ``pool_visual_spans``).
            past_key_values: a cache returned by an earlier call, or None.
            use_cache: return a :class:`PooledKVCache`.
        """
        dec = decoder_of(llm)
        n_layers = len(dec.layers)
        config = dec.config
        layer_types = getattr(config, 'layer_types', None) or ['full_attention'] * n_layers
        q_len = inputs_embeds.shape[1]
        decoding = past_key_values is not None and past_key_values.get_seq_length() > 0
        if use_cache and past_key_values is None:
            past_key_values = PooledKVCache(config=config)
        new_mask = attention_mask[:, -q_len:].long()
        if decoding:
            if bool(visual_mask.any()):
                raise ValueError('visual tokens after the prefill are not supported by the compressed KV cache')
            pool_at = past_key_values.layer
            if position_ids is None:
                position_ids = past_key_values.next_position[:, None] + torch.arange(
                    q_len, device=inputs_embeds.device, dtype=torch.float64)
            full_mask = torch.cat([past_key_values.full_attention_mask, new_mask], dim=1)
        else:
            setting = self.active()
            pool_at = None if setting is None else min(setting[0], n_layers)
            if position_ids is None:
                position_ids = (new_mask.cumsum(-1) - 1).clamp(min=0)
            full_mask = new_mask

        x, cur_mask, cur_pos, cur_vis, cur_labels = inputs_embeds, full_mask, position_ids, visual_mask.bool(), labels
        masks = pos_emb = None
        seen = torch.zeros(n_layers, dtype=torch.long, device=x.device)
        for i, layer in enumerate(dec.layers):
            if i == pool_at:
                if decoding:
                    cur_mask = torch.cat([past_key_values.pooled_attention_mask, new_mask], dim=1)
                else:
                    pooled = pool_visual_spans(x, cur_pos, cur_mask, cur_vis, setting[1], labels=cur_labels,
                                               span_starts=span_starts)
                    x, cur_pos, cur_mask = pooled.hidden_states, pooled.position_ids, pooled.attention_mask
                    cur_vis, cur_labels = pooled.visual_mask, pooled.labels
            if i == pool_at or i == 0:
                masks = self._masks(config, layer_types, x, cur_mask, past_key_values, i)
                pos_emb = dec.rotary_emb(x, cur_pos)
            seen[i] = cur_vis.sum()
            x = layer(x, attention_mask=masks[layer_types[i]], position_embeddings=pos_emb,
                      past_key_values=past_key_values, use_cache=use_cache)
        x = dec.norm(x)

        if use_cache:
            past_key_values.layer = pool_at
            past_key_values.full_attention_mask = full_mask
            past_key_values.pooled_attention_mask = cur_mask.long() if pool_at is not None else None
            valid_pos = torch.where(cur_mask[:, -cur_pos.shape[1]:].bool(), cur_pos.double(),
                                    torch.full_like(cur_pos, -1, dtype=torch.float64))
            past_key_values.next_position = valid_pos.max(dim=1).values + 1
        return CompressedLLMOutput(
            hidden_states=x, attention_mask=cur_mask[:, -x.shape[1]:].long(), labels=cur_labels,
            position_ids=cur_pos.double(), visual_mask=cur_vis,
            past_key_values=past_key_values if use_cache else None, visual_tokens_per_layer=seen)

    def forward_spans(self, llm: nn.Module, inputs_embeds: torch.Tensor, attention_mask: torch.Tensor,
                      visual_start: int, span_lengths, labels: Optional[torch.Tensor] = None) -> CompressedLLMOutput:
        """:meth:`forward` for batches whose rows share one visual layout (the LLMDet captioner's image tokens:
        ``span_lengths`` consecutive spans from ``visual_start``, e.g. ``(400, 1, 729)`` = grid, separator, grid;
        each span pools on its own, so a window never mixes the two grids or swallows the separator).

        Args:
            inputs_embeds: ``[B, T, H]``; attention_mask, labels: ``[B, T]`` (right padded).
        """
        B, T = attention_mask.shape
        visual = torch.zeros(B, T, dtype=torch.bool, device=attention_mask.device)
        starts = torch.zeros_like(visual)
        offset = visual_start
        for n in span_lengths:
            visual[:, offset:offset + n] = True
            starts[:, offset] = True
            offset += n
        return self(llm, inputs_embeds, attention_mask.long(), None, visual, labels=labels, span_starts=starts)

    @staticmethod
    def _masks(config, layer_types: List[str], x, mask2d, cache, layer_idx: int) -> dict:
        kwargs = dict(config=config, inputs_embeds=x, attention_mask=mask2d, past_key_values=cache,
                      position_ids=None, layer_idx=layer_idx)
        masks = {'full_attention': create_causal_mask(**kwargs)}
        if 'sliding_attention' in layer_types:
            kwargs.pop('layer_idx')
            masks['sliding_attention'] = create_sliding_window_causal_mask(**kwargs)
        return masks
