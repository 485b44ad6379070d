"""Original LLaVA repo layout (haotian-liu/LLaVA) -> our :class:`LLaVAModel` keys.

The original release is up to three pieces:

- the LLM folder (Vicuna / LLaMA / Qwen2 ``*ForCausalLM``, or a fine-tuned ``llava-v1.5-*`` folder):
  ``model.embed_tokens``, ``model.layers.*``, ``model.norm``, ``lm_head``; a fine-tuned folder also holds
  ``model.mm_projector.*`` and sometimes ``model.vision_tower.vision_tower.vision_model.*``;
- ``mm_projector.bin`` of the pre-training stage: ``model.mm_projector.{0,2}.{weight,bias}``
  (``mlp2x_gelu``: index 1 is the GELU) or ``model.mm_projector.{weight,bias}`` (``linear``);
- the CLIP folder (``openai/clip-vit-large-patch14-336``: a full ``CLIPModel`` with ``vision_model.*`` and
  ``text_model.*``, or a vision-only folder).

Ours: ``llm.model.*`` / ``llm.lm_head.*``, ``projector.linear_{1,2}.*`` (a ``linear`` projector is
``linear_1`` alone), ``vision_encoder.*`` (without the ``vision_model.`` level, see
:func:`llava_hf.fit_vision_prefix`). CLIP's text tower / projections / ``logit_scale`` and derived buffers
go to ``report.side``; anything else (``model.image_newline`` of LLaVA-NeXT, ...) to ``report.unconverted``.
"""
import re
from typing import Dict, Optional, Tuple

import torch

from .llava_hf import DERIVED_BUFFERS, VISION, strip_vision_model
from .report import ConversionReport

_PROJECTOR = re.compile(r'^(?:model\.)?mm_projector\.(?:(\d+)\.)?(weight|bias)$')
_PROJECTOR_INDEX = {None: 'linear_1', '0': 'linear_1', '2': 'linear_2'}
_VISION_IN_LLM = ('model.vision_tower.vision_tower.', 'model.vision_tower.')
_LLM_PARTS = ('model.embed_tokens.', 'model.layers.', 'model.norm.', 'lm_head.')
_CLIP_SIDE = ('text_model.', 'visual_projection.', 'text_projection.', 'logit_scale', 'logit_bias')


def _projector_key(key: str) -> Optional[str]:
    m = _PROJECTOR.match(key)
    if m is None or m.group(1) not in _PROJECTOR_INDEX:
        return None
    return f'projector.{_PROJECTOR_INDEX[m.group(1)]}.{m.group(2)}'


def _convert_llm(state_dict, out, report):
    for key, value in state_dict.items():
        if key.endswith(DERIVED_BUFFERS):
            report.side[key] = value
        elif (new := _projector_key(key)) is not None:
            out[new] = value
        elif key.startswith(_VISION_IN_LLM):
            prefix = next(p for p in _VISION_IN_LLM if key.startswith(p))
            out[VISION + strip_vision_model(key[len(prefix):])] = value
        elif key.startswith(_LLM_PARTS):
            out['llm.' + key] = value
        else:
            report.unconverted.append(key)


def _convert_projector(state_dict, out, report):
    for key, value in state_dict.items():
        new = _projector_key(key)
        if new is None:
            report.unconverted.append(key)
        else:
            out[new] = value


def _convert_vision(state_dict, out, report):
    for key, value in state_dict.items():
        if key.startswith(_CLIP_SIDE) or key.endswith(DERIVED_BUFFERS):
            report.side[key] = value
        else:
            out[VISION + strip_vision_model(key)] = value


def convert_llava_original(llm: Dict[str, torch.Tensor], mm_projector: Optional[Dict[str, torch.Tensor]] = None,
                           vision: Optional[Dict[str, torch.Tensor]] = None
                           ) -> Tuple[Dict[str, torch.Tensor], ConversionReport]:
    """Original LLaVA pieces -> ``(ours, report)``.

    Args:
        llm: state dict of the LLM folder (may already hold ``model.mm_projector.*`` / the vision tower).
        mm_projector: state dict of ``mm_projector.bin`` (wins over projector keys in ``llm``).
        vision: state dict of the CLIP (or SigLIP) folder.
    """
    report, out = ConversionReport(), {}
    _convert_llm(llm, out, report)
    if vision is not None:
        _convert_vision(vision, out, report)
    if mm_projector is not None:
        _convert_projector(mm_projector, out, report)
    return out, report


def is_llava_original(state_dict: Dict[str, torch.Tensor]) -> bool:
    """Whether the keys hold an original-layout projector (``model.mm_projector.*``)."""
    return any(_PROJECTOR.match(k) for k in state_dict)
