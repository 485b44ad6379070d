"""What REFVLMModel hands a unit decoder: the padded ``<REF>`` states of one unit, and their targets."""
from dataclasses import dataclass
from typing import List, Optional, Sequence

import torch


@dataclass
class RefQueries:
    """The ``<REF>`` queries of one decoding unit over the samples that have any.

    Attributes:
        states: ``[B_u, Q, H]`` LLM last-layer hidden states at the unit's ``<REF>`` tokens (padded).
        padding_mask: ``[B_u, Q]`` bool, True = padding.
        sample_index: ``[B_u]`` long, row of each entry in the model batch (its image features).
        groups: ``[B_u, Q]`` long, index of the triplet (phrase) each query belongs to, -1 on padding.
        boxes: ``[B_u, Q, 4]`` target boxes, normalized cxcywh of the model input (training only).
        keypoints: ``[B_u, Q, K, 3]`` target keypoints ``(x, y, v)``, x/y normalized, ``v`` COCO
            visibility (0 absent, 1 occluded, 2 visible) (keypoint unit, training only).
    """
    states: torch.Tensor
    padding_mask: torch.Tensor
    sample_index: torch.Tensor
    groups: torch.Tensor
    boxes: Optional[torch.Tensor] = None
    keypoints: Optional[torch.Tensor] = None

    @property
    def valid(self) -> torch.Tensor:
        """``[B_u, Q]`` bool, True = a real query."""
        return ~self.padding_mask


def pad_ref_queries(states: Sequence[torch.Tensor], groups: Sequence[Sequence[int]], sample_index: Sequence[int],
                    boxes: Optional[Sequence[torch.Tensor]] = None,
                    keypoints: Optional[Sequence[torch.Tensor]] = None) -> RefQueries:
    """Pad per-sample lists (``states[i] [n_i, H]``, ``groups[i]`` of length ``n_i``, ``boxes[i] [n_i, 4]``,
    ``keypoints[i] [n_i, K, 3]``) into a :class:`RefQueries`; every ``n_i >= 1``."""
    q = max(s.shape[0] for s in states)
    first = states[0]
    b = len(states)
    out_states = first.new_zeros(b, q, first.shape[-1])
    pad = torch.ones(b, q, dtype=torch.bool, device=first.device)
    grp = torch.full((b, q), -1, dtype=torch.long, device=first.device)
    out_boxes = None if boxes is None else first.new_zeros(b, q, 4, dtype=torch.float32)
    out_kps = None
    if keypoints is not None:
        k = keypoints[0].shape[1]
        out_kps = first.new_zeros(b, q, k, 3, dtype=torch.float32)
    for i, s in enumerate(states):
        n = s.shape[0]
        out_states[i, :n] = s
        pad[i, :n] = False
        grp[i, :n] = torch.as_tensor(list(groups[i]), dtype=torch.long, device=first.device)
        if out_boxes is not None:
            out_boxes[i, :n] = boxes[i].to(out_boxes)
        if out_kps is not None:
            out_kps[i, :n] = keypoints[i].to(out_kps)
    return RefQueries(out_states, pad, torch.as_tensor(list(sample_index), dtype=torch.long, device=first.device),
                      grp, out_boxes, out_kps)


def unpad(values: torch.Tensor, padding_mask: torch.Tensor) -> List[torch.Tensor]:
    """``[B_u, Q, ...]`` -> per-entry list of the real rows ``[n_i, ...]``."""
    return [v[~m] for v, m in zip(values, padding_mask)]
