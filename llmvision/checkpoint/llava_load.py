"""Read LLaVA checkpoints (ours, ``llava-hf`` folder, original LLaVA pieces) and load them into a
:class:`LLaVAModel` with a key report.

    report = load_llava_checkpoint(model, 'checkpoints/llava-1.5-7b-hf')                  # llava-hf
    report = load_llava_checkpoint(model, 'checkpoints/llava-v1.5-7b', src_format='llava',  # original
                                   mm_projector='checkpoints/llava-v1.5-7b/mm_projector.bin',
                                   vision_tower='checkpoints/clip-vit-large-patch14-336')
"""
import json
import os
from typing import Dict, Optional, Tuple

import torch
from mmengine.logging import print_log

from .llava_hf import convert_llava_hf, fit_vision_prefix, is_llava_hf
from .llava_original import convert_llava_original, is_llava_original
from .load import read_state_dict
from .report import ConversionReport, load_converted

FORMATS = ('auto', 'ours', 'llava-hf', 'llava')
_OURS = ('vision_encoder.', 'projector.', 'llm.')
_INDEXES = ('model.safetensors.index.json', 'pytorch_model.bin.index.json')


def read_checkpoint(path: str) -> Dict[str, torch.Tensor]:
    """A file (``.pth`` / ``.bin`` / ``.safetensors``) or a HF folder, sharded (``*.index.json``) or not."""
    if os.path.isdir(path):
        for index in _INDEXES:
            index_path = os.path.join(path, index)
            if os.path.exists(index_path) and not os.path.exists(index_path[:-len('.index.json')]):
                with open(index_path) as f:
                    shards = sorted(set(json.load(f)['weight_map'].values()))
                merged = {}
                for shard in shards:
                    shard_path = os.path.join(path, shard)
                    if not os.path.exists(shard_path):
                        raise FileNotFoundError(f'{index_path} names shard {shard!r}, which is not in {path!r}')
                    merged.update(read_state_dict(shard_path))
                return merged
    return read_state_dict(path)


def detect_llava_format(state_dict: Dict[str, torch.Tensor]) -> str:
    """``'llava-hf'`` (``multi_modal_projector.*``), ``'llava'`` (``model.mm_projector.*``) or ``'ours'``."""
    if is_llava_hf(state_dict):
        return 'llava-hf'
    if is_llava_original(state_dict):
        return 'llava'
    if any(k.startswith(_OURS) for k in state_dict):
        return 'ours'
    raise ValueError('cannot tell the LLaVA checkpoint format (expected transformers llava-hf keys '
                     '"multi_modal_projector.*", original LLaVA "model.mm_projector.*" or llmvision '
                     f'"vision_encoder./projector./llm." keys); first keys: {list(state_dict)[:5]}')


def convert_llava_state_dict(state_dict: Dict[str, torch.Tensor], src_format: str = 'auto',
                             mm_projector: Optional[Dict[str, torch.Tensor]] = None,
                             vision: Optional[Dict[str, torch.Tensor]] = None
                             ) -> Tuple[Dict[str, torch.Tensor], ConversionReport]:
    """Any LLaVA layout -> ``(ours, report)``. ``mm_projector`` / ``vision`` are the original layout's extra
    pieces (an LLM folder alone is ``llava`` format only when one of them is given)."""
    if src_format not in FORMATS:
        raise ValueError(f'src_format must be one of {FORMATS}, got {src_format!r}')
    fmt = src_format
    if fmt == 'auto':
        fmt = 'llava' if (mm_projector is not None or vision is not None) else detect_llava_format(state_dict)
    if fmt != 'llava' and (mm_projector is not None or vision is not None):
        raise ValueError(f'mm_projector / vision pieces belong to the original LLaVA layout, not {fmt!r}')
    if fmt == 'llava-hf':
        return convert_llava_hf(state_dict)
    if fmt == 'llava':
        return convert_llava_original(state_dict, mm_projector, vision)
    # ours: every key as is (subclasses such as VLoRA add their own modules); loading reports what does not fit
    return dict(state_dict), ConversionReport()


def fill_tied(state_dict: Dict[str, torch.Tensor], model: torch.nn.Module) -> Dict[str, torch.Tensor]:
    """Give a tied parameter (``llm.lm_head.weight`` of Qwen2-0.5B) the tensor of its twin when the checkpoint
    holds only one of them, so that loading does not report it missing."""
    owner = {}
    for key, value in model.state_dict(keep_vars=True).items():
        if value.numel():
            owner.setdefault(value.data_ptr(), []).append(key)
    out = dict(state_dict)
    for keys in owner.values():
        present = [k for k in keys if k in out]
        for key in keys:
            if key not in out and present:
                out[key] = out[present[0]]
    return out


def match_vocab(state_dict: Dict[str, torch.Tensor], model: torch.nn.Module) -> Optional[tuple]:
    """Resize the LLM's token embeddings (and head) to the checkpoint's vocabulary when only the row count differs.

    ``llava-hf`` checkpoints add ``<image>`` and a pad token to Vicuna's 32,000 (32,064 rows); our models mark an
    image with ``IMAGE_TOKEN_INDEX`` and never look those rows up, so the resized model computes the same.
    Returns ``(old rows, new rows)`` when it resized, else ``None``.
    """
    key = 'llm.model.embed_tokens.weight'
    llm = getattr(model, 'llm', None)
    if key not in state_dict or llm is None or not hasattr(llm, 'resize_token_embeddings'):
        return None
    old = llm.get_input_embeddings().weight.shape
    new = state_dict[key].shape
    if len(old) != 2 or old[1] != new[1] or old[0] == new[0]:
        return None
    llm.resize_token_embeddings(new[0], mean_resizing=False)
    print_log(f'LLaVA checkpoint: LLM vocabulary resized from {old[0]} to {new[0]} rows to match the checkpoint',
              logger='current')
    return old[0], new[0]


def load_llava_checkpoint(model: torch.nn.Module, path: str, src_format: str = 'auto',
                          mm_projector: Optional[str] = None, vision_tower: Optional[str] = None,
                          strict: bool = False, resize_vocab: bool = True) -> ConversionReport:
    """Read ``path`` (+ the original layout's ``mm_projector`` / ``vision_tower`` paths), convert to our keys and
    load into ``model``. Returns the report; ``strict`` raises a ``KeyError`` with it when anything is off.
    ``resize_vocab``: see :func:`match_vocab`."""
    state_dict = read_checkpoint(path)
    projector_sd = read_checkpoint(mm_projector) if mm_projector else None
    vision_sd = read_checkpoint(vision_tower) if vision_tower else None
    converted, report = convert_llava_state_dict(state_dict, src_format, projector_sd, vision_sd)
    if resize_vocab:
        match_vocab(converted, model)
    converted = fill_tied(fit_vision_prefix(converted, model.state_dict().keys()), model)
    report = load_converted(model, converted, report, strict=False)
    if strict and not report.ok:
        raise KeyError(f'checkpoint {path!r} does not match the model:\n' + report.summary())
    return report
