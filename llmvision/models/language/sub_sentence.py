"""Sub-sentence text masks: tokens attend only within their phrase; position ids restart per phrase.

Phrases are delimited by special tokens (for BERT: ``[CLS] [SEP] . ?``). A delimiter closes the
phrase before it and belongs to it. Two conventions exist for the delimiter's position id:

* ``'mmdet'`` (original Grounding-DINO / mmdet / LLMDet, the default): positions count
  ``0, 1, ..., n`` over the phrase *including* its closing delimiter;
* ``'hf'`` (transformers 5.x vectorised version): the closing delimiter gets position 0.

Released checkpoints were trained with the mmdet convention; ``'hf'`` exists to reproduce
transformers' outputs exactly.
"""
from typing import Sequence, Tuple

import torch


def sub_sentence_masks(input_ids: torch.Tensor, special_ids: Sequence[int],
                       convention: str = 'mmdet') -> Tuple[torch.Tensor, torch.Tensor]:
    """``input_ids [B, L]`` -> ``(attn_mask [B, L, L] bool True=may attend, position_ids [B, L] long)``."""
    if convention not in ('mmdet', 'hf'):
        raise ValueError(f"convention must be 'mmdet' or 'hf', got {convention!r}")
    bsz, seq_len = input_ids.shape
    device = input_ids.device
    special = torch.isin(input_ids, torch.as_tensor(list(special_ids), device=device))
    idx = torch.arange(seq_len, device=device).expand(bsz, -1)
    # index of the closing delimiter of each token's phrase (seq_len when there is none)
    nxt = torch.where(special, idx, torch.full_like(idx, seq_len))
    nxt = torch.flip(torch.cummin(torch.flip(nxt, [1]), 1)[0], [1])
    # index of the previous delimiter strictly before each token (-1 when there is none)
    prev_incl = torch.cummax(torch.where(special, idx, torch.full_like(idx, -1)), 1)[0]
    prev = torch.cat([torch.full_like(idx[:, :1], -1), prev_incl[:, :-1]], 1)
    valid = (nxt != 0) & (nxt != seq_len - 1) & (nxt != seq_len)
    mask = (nxt[:, :, None] == nxt[:, None, :]) & valid[:, None, :]
    mask = mask | torch.eye(seq_len, dtype=torch.bool, device=device)[None]
    if convention == 'mmdet':
        pos = idx - prev - 1
    else:
        pos = idx - prev_incl - 1
    pos = torch.where(valid, pos, torch.zeros_like(pos)).clamp(min=0)
    return mask, pos.long()
