"""Causal-LM cross-entropy on hidden states, computed only where there is a label and in row chunks.

A language-model head over a large vocabulary (Qwen2: 151k) turns ``[B, T, H]`` hidden states into
``[B, T, vocab]`` logits; in fp32 that is the memory peak of a LLaVA step. Here the head is applied only to
the positions whose next token is supervised (answer tokens), ``chunk_size`` rows at a time; each chunk's
logits are recomputed in the backward pass (activation checkpointing), so at most one chunk of fp32 logits
exists at any time. The head is called as a module (never through its ``weight``), so LoRA on ``lm_head``,
DeepSpeed ZeRO-3 parameter gathering and FSDP all see an ordinary forward.
"""
from typing import Optional

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from llmvision.structures.lmm_sample import IGNORE_INDEX


def _chunk_loss_sum(lm_head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Summed fp32 cross-entropy of ``hidden [n, H]`` against ``targets [n]``."""
    return F.cross_entropy(lm_head(hidden).float(), targets, reduction='sum')


def shift_for_next_token(hidden: torch.Tensor, labels: torch.Tensor):
    """Supervised rows of a causal LM: ``hidden [B, T, H]``, ``labels [B, T]`` -> ``(h [M, H], y [M])``.

    Position ``t`` predicts ``labels[:, t + 1]``; rows whose target is ``IGNORE_INDEX`` are dropped.
    """
    if hidden.shape[:2] != labels.shape:
        raise ValueError(f'hidden {tuple(hidden.shape)} and labels {tuple(labels.shape)} disagree on [B, T]')
    targets = labels[:, 1:]
    keep = targets != IGNORE_INDEX
    return hidden[:, :-1][keep], targets[keep]


def chunked_cross_entropy(lm_head: nn.Module, hidden: torch.Tensor, targets: torch.Tensor,
                          chunk_size: int = 1024, reduction: str = 'mean',
                          num_items: Optional[int] = None) -> torch.Tensor:
    """Cross-entropy of ``lm_head(hidden)`` against ``targets`` without materialising all logits at once.

    Args:
        lm_head: module mapping ``[n, H] -> [n, vocab]`` (the LLM's output embedding, maybe with LoRA).
        hidden: ``[M, H]`` rows to score (already restricted to supervised positions).
        targets: ``[M]`` token ids (no ``IGNORE_INDEX`` here).
        chunk_size: rows per chunk; when ``M <= chunk_size`` a single plain call is made (no recompute).
        reduction: ``'mean'`` (over the ``M`` rows, or ``num_items``) or ``'sum'``.
        num_items: divisor for ``'mean'`` (e.g. the token count across gradient-accumulation steps).

    Returns:
        fp32 scalar. With no rows: a zero that still depends on ``hidden`` (keeps the graph connected).
    """
    if reduction not in ('mean', 'sum'):
        raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
    if hidden.dim() != 2 or targets.shape != hidden.shape[:1]:
        raise ValueError(f'want hidden [M, H] and targets [M], got {tuple(hidden.shape)} and {tuple(targets.shape)}')
    m = hidden.shape[0]
    if m == 0:
        return hidden.float().sum() * 0.0
    if m <= chunk_size:
        total = _chunk_loss_sum(lm_head, hidden, targets)
    else:
        total = hidden.new_zeros((), dtype=torch.float32)
        for start in range(0, m, chunk_size):
            h, y = hidden[start:start + chunk_size], targets[start:start + chunk_size]
            if torch.is_grad_enabled() and h.requires_grad:
                total = total + checkpoint(_chunk_loss_sum, lm_head, h, y, use_reentrant=False)
            else:
                total = total + _chunk_loss_sum(lm_head, h, y)
    if reduction == 'sum':
        return total
    return total / float(num_items if num_items is not None else m)


def causal_lm_loss(lm_head: nn.Module, hidden: torch.Tensor, labels: torch.Tensor, chunk_size: int = 1024,
                   num_items: Optional[int] = None) -> torch.Tensor:
    """Mean next-token cross-entropy over supervised positions (what HF's ``labels=`` loss computes).

    Args:
        hidden: ``[B, T, H]`` last hidden states; labels: ``[B, T]`` with ``IGNORE_INDEX`` on unsupervised
            positions (the shift by one happens here).
    """
    h, y = shift_for_next_token(hidden, labels)
    return chunked_cross_entropy(lm_head, h, y, chunk_size=chunk_size, num_items=num_items)
