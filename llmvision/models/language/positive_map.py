"""Character spans -> token indices: multi-hot positive maps ``[num_entities, max_tokens]``."""
from typing import Sequence

import torch


def spans_to_positive_map(offsets: Sequence, entity_spans, max_tokens: int = 256,
                          normalize: bool = False) -> torch.Tensor:
    """Multi-hot map of the tokens covering each entity's character spans.

    Args:
        offsets: per token ``(char_start, char_end)`` from a fast tokenizer's
            ``offset_mapping``; special tokens have ``(0, 0)`` and never match.
        entity_spans: per entity, a list of ``(start, end)`` character spans.
        max_tokens: width of the map (256: the contrastive head's padded width).
        normalize: divide each row by its count (mmdet's "positive map" for losses uses the
            raw multi-hot; the original GLIP normalised).
    Returns:
        ``[len(entity_spans), max_tokens]`` float; a span covering no token is an error.
    """
    pmap = torch.zeros(len(entity_spans), max_tokens)
    tok = [(int(s), int(e)) for s, e in offsets]
    for i, spans in enumerate(entity_spans):
        for (cs, ce) in spans:
            hit = [j for j, (ts, te) in enumerate(tok)
                   if te > ts and ts < ce and te > cs and j < max_tokens]
            if not hit:
                raise ValueError(f'entity {i}: character span ({cs}, {ce}) covers no token within the '
                                 f'first {max_tokens} tokens (truncated prompt or bad tokens_positive)')
            pmap[i, hit] = 1.0
    if normalize:
        pmap = pmap / pmap.sum(-1, keepdim=True).clamp(min=1)
    return pmap
