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


_OURS_IMAGE_PROJECTOR = re.compile(r'((?:[\w.]+\.)?image_tokenizer\.projector\.)[\w.]+')


def released_projector_state(state_dict: Dict[str, torch.Tensor], prefix: str = 'mm_projector'
                             ) -> Tuple[Dict[str, torch.Tensor], List[str], List[str]]:
    """A pre-aligned projector file -> :class:`VisualProjector` keys.

    A mapping with a ``'state_dict'`` entry (an mmengine checkpoint) is read through it. Three layouts are known:

    - LLMDet's ``vision_projector_with_pos_proj`` (``mm_projector2.bin``): ``vision_projector.0.{0,2}.*`` and
      ``pos_proj.*`` after the first ``prefix + '.'`` of a key, as the released LLMDet reads it
      (``lmm_connector_prefix='mm_projector'``); the layout the released code loads strictly, so the file holds
      the position projection too;
    - LLaVA's plain ``mlp2x_gelu``: ``{0,2}.*`` after ``prefix + '.'`` (then ``pos_proj`` is not in the file
      and keeps its init);
    - ours, read only when no key holds ``prefix + '.'``: a checkpoint of our LLMDet / :class:`LLMCaptioner`,
      such as the stage-1 aligner's (``configs/llmdet/llmdet_swin_t_stage1.py``); its IMAGE projector
      ``[<any>.]image_tokenizer.projector.{proj.{0,2},pos_proj}.*`` is the one that stage trains. Everything
      else in it (its region projector included, which stage 1 leaves at init) is ``other``.

    Returns:
        ``(ours, unconverted, other)``: our keys (``proj.0.weight``, ..., ``pos_proj.weight``), keys of the
        projector that fit no layout, and keys that are not projector weights.

    Raises:
        ValueError: our layout with several image projectors (e.g. ``captioner.`` and ``module.captioner.``).
    """
    if isinstance(state_dict.get('state_dict'), dict):
        state_dict = state_dict['state_dict']
    marker = prefix + '.'
    if not any(marker in key for key in state_dict):
        heads = {m.group(1) for key in state_dict if (m := _OURS_IMAGE_PROJECTOR.fullmatch(key))}
        if len(heads) > 1:
            raise ValueError(f'several image projectors in the checkpoint: {sorted(heads)}')
        if heads:
            return _ours_projector_state(state_dict, heads.pop())
    ours, unconverted, other = {}, [], []
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


def _ours_projector_state(state_dict: Dict[str, torch.Tensor], head: str):
    """Our image projector under ``head`` (e.g. ``'captioner.image_tokenizer.projector.'``) -> its own keys."""
    ours, unconverted, other = {}, [], []
    for key, value in state_dict.items():
        if not key.startswith(head):
            other.append(key)
        elif re.fullmatch(r'(proj\.[02]|pos_proj)\.(weight|bias)', key[len(head):]):
            ours[key[len(head):]] = value
        else:
            unconverted.append(key)
    return ours, unconverted, other
