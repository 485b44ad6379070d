"""1-D average pooling of the visual spans of a padded multimodal batch (LLaVolta's compressor step).

A *visual span* is one image's run of visual tokens in a row (``span_starts`` marks each image's first
token, so two images placed back to back stay separate; without it, each maximal run of
``visual_mask`` is one span). Each span of ``n`` tokens is cut into windows of ``stride`` tokens from
its start: ``ceil(n / stride)`` pooled tokens, the last (partial) window averaged over the tokens it
actually holds (``n % stride`` of them). Text tokens pass through unchanged and padding tokens are
dropped, so a text-only row keeps its real tokens and text-only and image rows can share a batch.

What follows the tokens:
  * hidden states: the window mean (accumulated in fp32, cast back to the input dtype);
  * position ids: the window mean of the integer positions, computed exactly (int64 sum, one
    float64 division; consecutive positions give ``start + (size - 1) / 2``, a half-integer), never
    through fp16; text tokens keep their original positions;
  * labels, attention mask, visual mask: those of the window's first token (the surviving token; a
    visual token's label is ``IGNORE_INDEX``).

Rows shrink by different amounts; the pooled batch has ``T' = max`` of the pooled rows' real lengths and
the other columns are padding (mask 0, label ``IGNORE_INDEX``, zero states) on the side the input was
padded on (left-padded generation prompts stay left-padded; an unpadded batch is pooled left-padded, so
the last column stays every row's last token).
"""
from dataclasses import dataclass
from typing import Optional

import torch

from llmvision.structures.lmm_sample import IGNORE_INDEX


@dataclass
class PooledSequence:
    """Result of :func:`pool_visual_spans` (``T'`` = pooled length).

    Attributes:
        hidden_states: ``[B, T', H]``.
        position_ids: ``[B, T']`` float64 (exact window means; integers where nothing was pooled).
        attention_mask: ``[B, T']`` long, 0 on padding.
        labels: ``[B, T']`` long or None.
        visual_mask: ``[B, T']`` bool.
        source_index: ``[B, T']`` long, index in the input row of each pooled token's first input
            token (-1 on the added padding).
        window_size: ``[B, T']`` long, number of input tokens averaged into each output token (0 on
            added padding).
    """
    hidden_states: torch.Tensor
    position_ids: torch.Tensor
    attention_mask: torch.Tensor
    labels: Optional[torch.Tensor]
    visual_mask: torch.Tensor
    source_index: torch.Tensor
    window_size: torch.Tensor


def span_starts_from_mask(visual_mask: torch.Tensor) -> torch.Tensor:
    """``[B, T]`` bool: True at the first token of each maximal run of ``visual_mask [B, T]``."""
    prev = torch.zeros_like(visual_mask)
    prev[:, 1:] = visual_mask[:, :-1]
    return visual_mask & ~prev


def is_left_padded(attention_mask: torch.Tensor) -> bool:
    """True unless some row of ``attention_mask [B, T]`` ends with padding (right padding). A batch without
    padding counts as left-padded: its pooled rows end together, so the last column is every row's last real
    token (what a generation prefill reads)."""
    return bool(attention_mask[:, -1].all())


def pool_visual_spans(hidden_states: torch.Tensor, position_ids: torch.Tensor, attention_mask: torch.Tensor,
                      visual_mask: torch.Tensor, stride: int, labels: Optional[torch.Tensor] = None,
                      span_starts: Optional[torch.Tensor] = None) -> PooledSequence:
    """Average-pool every visual span with kernel = stride = ``stride`` (see the module docstring).

    Args:
        hidden_states: ``[B, T, H]``.
        position_ids: ``[B, T]`` integer positions (long, or float from an earlier pooling).
        attention_mask: ``[B, T]``, 1 on real tokens.
        visual_mask: ``[B, T]`` bool, True on visual tokens.
        stride: window size ``S >= 1``.
        labels: optional ``[B, T]``.
        span_starts: optional ``[B, T]`` bool, True at each image's first visual token.
    """
    if stride < 1:
        raise ValueError(f'stride must be >= 1, got {stride}')
    B, T = visual_mask.shape
    device = hidden_states.device
    visual_mask = visual_mask.bool()
    if span_starts is None:
        span_starts = span_starts_from_mask(visual_mask)
    span_starts = span_starts.bool() & visual_mask
    ar = torch.arange(T, device=device).expand(B, T)
    valid_in = attention_mask.bool()
    # offset of each visual token inside its span
    last_start = torch.where(span_starts, ar, torch.zeros_like(ar)).cummax(dim=1).values
    offset = ar - last_start
    is_first = valid_in & (~visual_mask | (offset % stride == 0))
    col = is_first.long().cumsum(dim=1) - 1  # output column of every real input token
    lengths = col[:, -1] + 1
    T_out = int(lengths.max())
    if is_left_padded(attention_mask):
        col = col + (T_out - lengths)[:, None]

    dump = B * T_out  # padding tokens are dropped: they all land in one extra slot, cut off below
    flat = torch.where(valid_in, col + torch.arange(B, device=device)[:, None] * T_out,
                       torch.full_like(col, dump)).reshape(-1)
    H = hidden_states.shape[-1]
    acc = hidden_states.new_zeros(dump + 1, H, dtype=torch.float32)
    acc.index_add_(0, flat, hidden_states.reshape(-1, H).float())
    count = torch.zeros(dump + 1, dtype=torch.long, device=device).index_add_(0, flat, torch.ones_like(flat))
    if position_ids.dtype.is_floating_point:
        pos_sum = torch.zeros(dump + 1, dtype=torch.float64, device=device).index_add_(
            0, flat, position_ids.reshape(-1).double())
    else:
        pos_sum = torch.zeros(dump + 1, dtype=torch.long, device=device).index_add_(
            0, flat, position_ids.reshape(-1).long()).double()
    acc, count, pos_sum = acc[:dump], count[:dump], pos_sum[:dump]
    denom = count.clamp(min=1)
    pooled = (acc / denom[:, None]).to(hidden_states.dtype).view(B, T_out, H)
    pooled_pos = (pos_sum / denom.double()).view(B, T_out)

    source = torch.full((B * T_out,), -1, dtype=torch.long, device=device)
    first_flat = flat.view(B, T)[is_first]  # never the dump slot: is_first implies a real token
    source[first_flat] = ar[is_first]
    source = source.view(B, T_out)
    valid = source >= 0
    src = source.clamp(min=0)

    def take(x, fill):
        return torch.where(valid, x.gather(1, src), torch.full_like(src, fill, dtype=x.dtype))

    return PooledSequence(
        hidden_states=pooled,
        position_ids=pooled_pos,
        attention_mask=take(attention_mask.long(), 0),
        labels=None if labels is None else take(labels, IGNORE_INDEX),
        visual_mask=take(visual_mask, False),
        source_index=source,
        window_size=count.view(B, T_out))
