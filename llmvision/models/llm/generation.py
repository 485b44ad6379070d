"""Batched decoding with a KV cache over ``inputs_embeds``: greedy and beam search, EOS ids and stop strings.

The model side is reduced to two callables, so every caller (LLaVA and its subclasses, the LLMDet captioner,
the REC selector) runs its own forward (visual tokens, compressors, per-sample adapters) and shares the loop:

- ``step_fn(embeds [R, 1, H], attention_mask [R, L], position_ids [R, 1], past) -> (logits [R, V], past)``
  runs one decoding step on the cache ``past`` (a transformers ``Cache``) and returns the logits of the new
  position (any float dtype) and the updated cache;
- ``embed_fn(token_ids [R, 1]) -> [R, 1, H]`` embeds the chosen tokens.

The caller runs the prefill itself (the prompt must be LEFT padded, so its last position is the last real
token of every row) and hands over its last-position logits ``[B, V]``, the cache, the attention mask
``[B, L]`` and ``next_positions [B]`` (position id of the first generated token of each row).

Greedy follows transformers' ``generate(do_sample=False)``; beam search follows transformers' beam search
(``length_penalty`` on the generated length, ``early_stopping=False`` heuristic, ``2 * num_beams`` candidates
kept per step, the cache reordered with ``Cache.reorder_cache``). The returned ids of a row end with the
token that stopped it (an EOS id or the last token of a stop string), or at ``max_new_tokens``.
"""
from typing import Callable, List, Optional, Sequence

import torch
import torch.nn.functional as F

_NEG = -1.0e9


class StopStrings:
    """``__call__(rows: list of token-id lists) -> bool [R]``: does the decoded text contain a stop string?

    Args:
        tokenizer: decodes the generated ids (special tokens kept, so ``'<|im_end|>'`` can be a stop string).
        stop_strings: strings that end a generation; ``truncate`` cuts the text before the first one.
    """

    def __init__(self, tokenizer, stop_strings: Sequence[str]):
        self.tokenizer = tokenizer
        self.stop_strings = tuple(s for s in stop_strings if s)

    def __bool__(self):
        return bool(self.stop_strings)

    def __call__(self, rows: List[List[int]]) -> torch.Tensor:
        texts = self.tokenizer.batch_decode(rows, skip_special_tokens=False)
        return torch.tensor([any(s in t for s in self.stop_strings) for t in texts], dtype=torch.bool)

    def truncate(self, text: str) -> str:
        cut = min((text.find(s) for s in self.stop_strings if s in text), default=len(text))
        return text[:cut]


def _hits(tokens: torch.Tensor, eos: torch.Tensor, rows: Optional[torch.Tensor], stop_fn) -> torch.Tensor:
    """Rows whose new token ``tokens [R]`` ends them; ``rows [R, t]`` the generated ids so far (incl. new)."""
    hit = torch.isin(tokens, eos)
    if stop_fn and rows is not None:
        hit = hit | stop_fn(rows.tolist()).to(hit.device)
    return hit


@torch.no_grad()
def generate(step_fn: Callable, embed_fn: Callable, logits: torch.Tensor, past, attention_mask: torch.Tensor,
             next_positions: torch.Tensor, max_new_tokens: int, eos_token_ids: Sequence[int],
             pad_token_id: int = 0, num_beams: int = 1, length_penalty: float = 1.0,
             stop_fn: Optional[Callable] = None) -> List[List[int]]:
    """Decode after a prefill (see the module docstring for the callables).

    Args:
        logits: ``[B, V]`` logits of the last prompt position.
        past: the prefill's cache (modified in place).
        attention_mask: ``[B, L]`` mask of the prefilled positions (1 = real token).
        next_positions: ``[B]`` position id of the first new token.
        max_new_tokens: longest generation.
        eos_token_ids: ids that end a row (kept in its output).
        pad_token_id: filler after a row ended (greedy, never returned).
        num_beams: 1 = greedy, else beam search returning the best finished beam.
        length_penalty: beam score = sum log-prob / generated_length ** length_penalty.
        stop_fn: optional :class:`StopStrings` (rows ending in a stop string end like EOS).

    Returns:
        B lists of generated token ids.
    """
    if max_new_tokens < 1:
        return [[] for _ in range(logits.shape[0])]
    eos = torch.tensor(sorted(set(int(t) for t in eos_token_ids)), dtype=torch.long, device=logits.device)
    attention_mask = attention_mask.long()
    if num_beams == 1:
        return _greedy(step_fn, embed_fn, logits, past, attention_mask, next_positions, max_new_tokens, eos,
                       pad_token_id, stop_fn)
    return _beam(step_fn, embed_fn, logits, past, attention_mask, next_positions, max_new_tokens, eos,
                 num_beams, length_penalty, stop_fn)


def _greedy(step_fn, embed_fn, logits, past, mask, positions, max_new_tokens, eos, pad_id, stop_fn):
    rows = logits.shape[0]
    done = torch.zeros(rows, dtype=torch.bool, device=logits.device)
    lengths = torch.full((rows,), max_new_tokens, dtype=torch.long, device=logits.device)
    tokens = []
    for step in range(max_new_tokens):
        nxt = logits.argmax(-1)
        nxt = torch.where(done, torch.full_like(nxt, pad_id), nxt)
        tokens.append(nxt)
        hit = _hits(nxt, eos, torch.stack(tokens, 1) if stop_fn else None, stop_fn) & ~done
        lengths = torch.where(hit, torch.full_like(lengths, step + 1), lengths)
        done = done | hit
        if bool(done.all()) or step == max_new_tokens - 1:
            break
        mask = torch.cat((mask, mask.new_ones(rows, 1)), dim=1)
        logits, past = step_fn(embed_fn(nxt[:, None]), mask, positions[:, None], past)
        positions = positions + 1
    out = torch.stack(tokens, 1).tolist()
    return [row[:n] for row, n in zip(out, lengths.tolist())]


def _gather(t: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
    """``t [B, K, ...]`` gathered along dim 1 with ``idx [B, K']``."""
    while idx.dim() < t.dim():
        idx = idx.unsqueeze(-1)
    return torch.take_along_dim(t, idx, dim=1)


def _beam(step_fn, embed_fn, logits, past, mask, positions, max_new_tokens, eos, num_beams, length_penalty,
          stop_fn):
    batch, vocab = logits.shape
    k = num_beams
    keep = max(2, 1 + eos.numel()) * k
    dev = logits.device
    past.batch_repeat_interleave(k)
    mask = mask.repeat_interleave(k, 0)
    positions = positions.repeat_interleave(k, 0)
    logits = logits.repeat_interleave(k, 0)

    running = torch.zeros((batch, k, max_new_tokens), dtype=torch.long, device=dev)
    finished = running.clone()
    running_scores = torch.zeros((batch, k), device=dev)
    running_scores[:, 1:] = _NEG
    finished_scores = torch.full((batch, k), _NEG, device=dev)
    finished_len = torch.zeros((batch, k), dtype=torch.long, device=dev)
    is_finished = torch.zeros((batch, k), dtype=torch.bool, device=dev)
    improvable = torch.ones((batch, 1), dtype=torch.bool, device=dev)
    top_mask = torch.arange(keep, device=dev) < k
    offsets = torch.arange(batch, device=dev)[:, None] * k
    for cur in range(max_new_tokens):
        logp = F.log_softmax(logits.float(), dim=-1).view(batch, k, vocab) + running_scores[:, :, None]
        top_lp, top_idx = torch.topk(logp.view(batch, k * vocab), keep)
        src = top_idx // vocab
        tok = top_idx % vocab
        cand = _gather(running, src)
        cand[:, :, cur] = tok
        hit = torch.isin(tok, eos) | (cur + 1 >= max_new_tokens)
        if stop_fn:
            hit = hit | stop_fn(cand[:, :, :cur + 1].reshape(batch * keep, -1).tolist()).to(dev).view(batch, keep)
        # beams that continue
        run_lp = top_lp + hit.float() * _NEG
        nxt = torch.topk(run_lp, k).indices
        running = _gather(cand, nxt)
        running_scores = _gather(run_lp, nxt)
        running_src = _gather(src, nxt)
        # beams that end here (only the top num_beams candidates may)
        just = hit & top_mask[None]
        score = top_lp / float(cur + 1) ** length_penalty
        score = score + (~improvable).float() * _NEG + (~just).float() * _NEG
        m_seq = torch.cat((finished, cand), 1)
        m_score = torch.cat((finished_scores, score), 1)
        m_len = torch.cat((finished_len, torch.full_like(tok, cur + 1)), 1)
        m_fin = torch.cat((is_finished, just), 1)
        best = torch.topk(m_score, k).indices
        finished, finished_scores = _gather(m_seq, best), _gather(m_score, best)
        finished_len, is_finished = _gather(m_len, best), _gather(m_fin, best)
        # transformers' early_stopping=False heuristic
        cur_len = cur + 1
        best_running = running_scores[:, :1] / float(cur_len) ** length_penalty
        worst_finished = torch.where(is_finished, finished_scores.min(1, keepdim=True).values,
                                     torch.full_like(finished_scores, _NEG))
        improvable = improvable & (best_running > worst_finished).any(-1, keepdim=True)
        if not bool(improvable.any()) or bool(hit.all()) or cur_len >= max_new_tokens:
            break
        past.reorder_cache((running_src + offsets).reshape(-1))
        tokens = running[:, :, cur].reshape(-1, 1)
        mask = torch.cat((mask, mask.new_ones(batch * k, 1)), dim=1)
        logits, past = step_fn(embed_fn(tokens), mask, positions[:, None], past)
        positions = positions + 1
    best_seq, best_len = finished[:, 0].tolist(), finished_len[:, 0].tolist()
    return [row[:n] for row, n in zip(best_seq, best_len)]
