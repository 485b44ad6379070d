"""transformers ``LlavaForConditionalGeneration`` state dict (``llava-hf`` layout) -> our :class:`LLaVAModel` keys.

Three generations of the same model are on disk:

- transformers < 4.52 and what 5.x ``save_pretrained`` writes again (its reverse conversion mapping):
  ``language_model.model.*``, ``language_model.lm_head.*``, ``vision_tower.[vision_model.]*``,
  ``multi_modal_projector.linear_{1,2}.*``;
- transformers 4.52 - 5.x in memory (and checkpoints saved without the reverse mapping):
  ``model.language_model.*``, ``lm_head.*``, ``model.vision_tower.[vision_model.]*``,
  ``model.multi_modal_projector.linear_{1,2}.*``.

Ours: ``llm.model.*``, ``llm.lm_head.*`` (an HF causal LM), ``projector.linear_{1,2}.*`` and
``vision_encoder.*`` (an HF ``CLIPVisionModel`` / ``SiglipVisionModel``). The vision keys come out
without the ``vision_model.`` level (transformers 5's module layout); :func:`fit_vision_prefix` adds it
for a model that still has it. Derived buffers (rotary ``inv_freq``, ``position_ids``) go to
``report.side``; keys of other LLaVA variants (``image_newline`` of LLaVA-NeXT, ...) to ``report.unconverted``.
"""
import re
from typing import Dict, Iterable, Tuple

import torch

from .report import ConversionReport

VISION = 'vision_encoder.'
DERIVED_BUFFERS = ('rotary_emb.inv_freq', 'embeddings.position_ids')
_LLM = (('model.language_model.', 'llm.model.'), ('language_model.model.', 'llm.model.'),
        ('language_model.lm_head.', 'llm.lm_head.'), ('lm_head.', 'llm.lm_head.'))
_VISION = ('model.vision_tower.', 'vision_tower.')
_PROJECTOR = re.compile(r'^(?:model\.)?multi_modal_projector\.(linear_[12]\.(?:weight|bias))$')


def strip_vision_model(rest: str) -> str:
    """``vision_model.encoder.layers.0...`` -> ``encoder.layers.0...`` (transformers 5 layout)."""
    return rest[len('vision_model.'):] if rest.startswith('vision_model.') else rest


def convert_llava_hf(state_dict: Dict[str, torch.Tensor]) -> Tuple[Dict[str, torch.Tensor], ConversionReport]:
    """HF LLaVA state dict (either layout) -> ``(ours, report)``; ``report.unconverted`` lists unplaced keys."""
    report, out = ConversionReport(), {}
    for key, value in state_dict.items():
        if key.endswith(DERIVED_BUFFERS):
            report.side[key] = value
            continue
        new = None
        for old, ours in _LLM:
            if key.startswith(old):
                new = ours + key[len(old):]
                break
        if new is None and key.startswith(_VISION):
            rest = key.split('vision_tower.', 1)[1]
            new = VISION + strip_vision_model(rest)
        if new is None and (m := _PROJECTOR.match(key)):
            new = 'projector.' + m.group(1)
        if new is None:
            report.unconverted.append(key)
            continue
        out[new] = value
    return out, report


def fit_vision_prefix(state_dict: Dict[str, torch.Tensor], model_keys: Iterable[str],
                      prefix: str = VISION) -> Dict[str, torch.Tensor]:
    """Add ``vision_model.`` under ``prefix`` when the model's vision encoder has that level (transformers < 5)."""
    model_keys = set(model_keys)
    if not any(k.startswith(prefix + 'vision_model.') for k in model_keys):
        return state_dict
    out = {}
    for key, value in state_dict.items():
        if key.startswith(prefix) and not key.startswith(prefix + 'vision_model.') \
                and key not in model_keys:
            key = prefix + 'vision_model.' + key[len(prefix):]
        out[key] = value
    return out


def is_llava_hf(state_dict: Dict[str, torch.Tensor]) -> bool:
    """Whether the keys look like a transformers LLaVA checkpoint (a projector named ``multi_modal_projector``)."""
    return any(_PROJECTOR.match(k) for k in state_dict)

