"""Visual projector: detector features (256-d) + box positions -> LLM token embeddings."""
import re
from typing import Dict, List, Tuple

import torch
import torch.nn as nn

from llmvision.registry import MODELS

from .sine_embedding import box_sine_embedding


@MODELS.register_module()
class VisualProjector(nn.Module):
    """``proj = Linear(in, hidden) - GELU - Linear(hidden, hidden)`` plus a box position projection.

    ``token = proj(feature) + pos_proj(box_sine_embedding(box))`` where the sine embedding has
    ``4 * pos_feats`` (512) dims. This is LLMDet's "mlp2x_gelu" connector with its position projection.

    Args:
        in_dims: detector feature size (256).
        hidden_size: LLM hidden size.
        pos_feats: sine features per box coordinate (128).
    """

    def __init__(self, in_dims: int, hidden_size: int, pos_feats: int = 128):
        super().__init__()
        self.pos_feats = pos_feats
        self.proj = nn.Sequential(nn.Linear(in_dims, hidden_size), nn.GELU(),
                                  nn.Linear(hidden_size, hidden_size))
        self.pos_proj = nn.Linear(4 * pos_feats, hidden_size)

    def forward(self, feats: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``feats [..., in_dims]``, ``boxes [..., 4]`` (normalized) -> ``[..., hidden_size]``.

        Computed in the projector's parameter dtype (fp32 by default); the caller casts to the LLM dtype.
        """
        dtype = self.pos_proj.weight.dtype
        pos = box_sine_embedding(boxes, self.pos_feats).to(dtype)
        return self.proj(feats.to(dtype)) + self.pos_proj(pos)


def released_projector_state(state_dict: Dict[str, torch.Tensor], prefix: str = 'mm_projector'
                             ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """A pre-aligned LLaVA / LLMDet projector file (``mm_projector2.bin``) -> :class:`VisualProjector` keys.

    As the released LLMDet (``lmm_connector_prefix='mm_projector'``), the part of each key after the first
    ``prefix + '.'`` is used. Two layouts are known:

    - LLMDet's ``vision_projector_with_pos_proj``: ``vision_projector.0.{0,2}.*`` and ``pos_proj.*`` (the layout
      the released code loads strictly, so its ``mm_projector2.bin`` holds the position projection too);
    - LLaVA's plain ``mlp2x_gelu``: ``{0,2}.*`` (then ``pos_proj`` is not in the file and keeps its init).

    Returns:
        ``(ours, unconverted, other)``: our keys (``proj.0.weight``, ..., ``pos_proj.weight``), keys under
        ``prefix`` that fit neither layout, and keys without ``prefix`` (not projector weights).
    """
    ours, unconverted, other = {}, [], []
    marker = prefix + '.'
    for key, value in state_dict.items():
        if marker not in key:
            other.append(key)
            continue
        rest = key.split(marker, 1)[1]
        m = re.fullmatch(r'(?:vision_projector\.0\.)?([02])\.(weight|bias)', rest)
        if m:
            ours[f'proj.{m.group(1)}.{m.group(2)}'] = value
        elif re.fullmatch(r'pos_proj\.(weight|bias)', rest):
            ours[rest] = value
        else:
            unconverted.append(key)
    return ours, unconverted, other
