"""Released VLoRA ``mm_projector.bin`` -> our :class:`PerceptualWeightsGenerator` keys, with a key report.

The released code (github.com/FeipengMa6/VLoRA, ``llava/model/VLoRA/weights_generater.py``, ``LoRAGenerater``
with ``weights_sep=True``) saves the generator as the LLaVA projector, so its keys are the trainer's
``named_parameters()`` names under ``model.mm_projector.``:

=======================================================  ===================================================
released key                                             ours (under ``prefix``, default ``weight_generator.``)
=======================================================  ===================================================
``visual_proj.{weight,bias}``                            ``visual_proj.{weight,bias}``
``pos_embed`` ``[1, P, d]``                               ``pos_embed``
``gen.{i}.queries`` / ``.decoders.{j}.*`` / ``.norm.*``  ``gen.{t}.<same>`` with ``t = weight_types[i]``
``gen.{i}.weights_head.{weight,bias}``                   ``gen.{t}.weights_head.{weight,bias}``
``Bs`` ``[1, T * k, h * r]``                             ``lora_B.{t}`` ``[k, h, r]`` (type-major, as released)
=======================================================  ===================================================

Keys outside the projector (a full fine-tuned checkpoint: ``model.layers.*``, ``lm_head.*``,
``model.vision_tower.*``) are kept apart in ``report.side``; the shared-stack layout (``weights_sep=False``,
``gen.queries``) is not supported and its keys are reported as unconverted.
"""
import os
import re
from typing import Dict, Tuple

import torch

from .load import read_state_dict
from .report import ConversionReport, load_converted

_PROJECTOR_PREFIXES = ('base_model.model.model.mm_projector.', 'model.mm_projector.', 'mm_projector.')


def convert_vlora_projector(state_dict: Dict[str, torch.Tensor], rank: int, weight_types: str = 'qkvom',
                            prefix: str = 'weight_generator.') -> Tuple[Dict[str, torch.Tensor], ConversionReport]:
    """Rename a released VLoRA projector state dict to our generator keys (prefixed with ``prefix``).

    Args:
        state_dict: the released ``mm_projector.bin`` (or a full checkpoint).
        weight_types: the checkpoint's ``vlora_type`` (order of the ``gen.{i}`` stacks and of ``Bs``).
        rank: the LoRA rank (``vlora_rank``, 64 for the released models; ``Bs`` does not record it).
        prefix: where the generator lives in the target model.
    """
    report = ConversionReport()
    out: Dict[str, torch.Tensor] = {}
    projector = {}
    for key, value in state_dict.items():
        for p in _PROJECTOR_PREFIXES:
            if key.startswith(p):
                projector[key[len(p):]] = value
                break
        else:
            report.side[key] = value
    for key, value in projector.items():
        m = re.match(r'gen\.(\d+)\.(.+)$', key)
        if key.startswith(('visual_proj.', 'pos_embed')):
            out[prefix + key] = value
        elif m and int(m.group(1)) < len(weight_types):
            out[f'{prefix}gen.{weight_types[int(m.group(1))]}.{m.group(2)}'] = value
        elif key != 'Bs':
            report.unconverted.append(key)
    if 'Bs' in projector:
        out.update(_split_bs(projector['Bs'], weight_types, rank, prefix, report))
    return out, report


def _split_bs(bs, weight_types, rank, prefix, report):
    """``Bs [1, T * k, h * r]`` -> per type ``[k, h, r]``."""
    n_types = len(weight_types)
    if bs.dim() != 3 or bs.shape[0] != 1 or bs.shape[1] % n_types or bs.shape[2] % rank:
        report.unconverted.append(f'Bs {tuple(bs.shape)} (expected [1, {n_types} * k, h * {rank}])')
        return {}
    split = bs.reshape(n_types, bs.shape[1] // n_types, bs.shape[2] // rank, rank)
    return {f'{prefix}lora_B.{t}': split[i].clone() for i, t in enumerate(weight_types)}


def load_vlora_projector(model, state_dict, weight_types: str = 'qkvom',
                         prefix: str = 'weight_generator.', strict: bool = False) -> ConversionReport:
    """Convert a released projector state dict and load it into ``model`` (the rank is read from the model's
    ``lora_B``); ``state_dict`` may be a path (``mm_projector.bin``). Returns the key report, whose ``missing``
    only lists generator keys."""
    if isinstance(state_dict, (str, os.PathLike)):
        state_dict = read_state_dict(os.fspath(state_dict))
    own = model.state_dict()
    b_key = f'{prefix}lora_B.{weight_types[0]}'
    if b_key not in own:
        raise KeyError(f'{b_key!r} is not in the model: set prefix= to where the generator lives')
    converted, report = convert_vlora_projector(state_dict, own[b_key].shape[-1], weight_types, prefix)
    report = load_converted(model, converted, report, strict=False)
    report.missing = [k for k in report.missing if k.startswith(prefix)]
    if strict and not report.ok:
        raise KeyError('VLoRA projector does not match the model:\n' + report.summary())
    return report
