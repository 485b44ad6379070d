"""Load a foreign or native checkpoint file into a :class:`GroundingDINO` with a key report."""
import os
from typing import Tuple

from .hf_grounding_dino import convert_hf_grounding_dino
from .mmdet_grounding_dino import convert_mmdet_grounding_dino
from .report import ConversionReport, load_converted


def read_state_dict(path: str) -> dict:
    """``.pth``/``.bin`` (optionally under ``state_dict``/``model``), ``.safetensors`` or a HF folder."""
    if not os.path.exists(path):
        raise FileNotFoundError(f'checkpoint {path!r} does not exist (give a local .pth/.bin/'
                                f'.safetensors file or a HF model folder)')
    if os.path.isdir(path):
        for name in ('model.safetensors', 'pytorch_model.bin'):
            if os.path.exists(os.path.join(path, name)):
                return read_state_dict(os.path.join(path, name))
        raise FileNotFoundError(f'{path!r} holds no model.safetensors or pytorch_model.bin')
    if path.endswith('.safetensors'):
        from safetensors.torch import load_file
        return load_file(path)
    # mmengine's loader, patched by llmvision.utils.compat: weights-only unpickling with an
    # allow-list, so an untrusted file cannot run code (LLMVISION_TRUSTED_CHECKPOINTS=1 opts out)
    from mmengine.runner.checkpoint import _load_checkpoint
    ckpt = _load_checkpoint(path, map_location='cpu')
    for key in ('state_dict', 'model'):
        if isinstance(ckpt, dict) and isinstance(ckpt.get(key), dict):
            return ckpt[key]
    return ckpt


def detect_format(state_dict: dict) -> str:
    """``'hf'`` (``model.text_backbone.*``), ``'mmdet'`` (``language_model.*`` / ``bbox_head.*``)
    or ``'ours'`` (``text_encoder.*`` / ``cls_branches.*``)."""
    keys = list(state_dict)
    if any(k.startswith('model.text_backbone.') or k.startswith('model.encoder.') for k in keys):
        return 'hf'
    if any(k.startswith(('language_model.', 'bbox_head.', 'module.bbox_head.')) for k in keys):
        return 'mmdet'
    if any(k.startswith(('text_encoder.', 'cls_branches.')) for k in keys):
        return 'ours'
    raise ValueError('cannot tell the checkpoint format (expected HF mm-grounding-dino, mmdet/LLMDet '
                     f'or llmvision keys); first keys: {keys[:5]}')


def convert_state_dict(state_dict: dict, src_format: str = 'auto') -> Tuple[dict, ConversionReport]:
    fmt = detect_format(state_dict) if src_format == 'auto' else src_format
    if fmt == 'hf':
        return convert_hf_grounding_dino(state_dict)
    if fmt == 'mmdet':
        return convert_mmdet_grounding_dino(state_dict)
    if fmt == 'ours':
        return dict(state_dict), ConversionReport()
    raise ValueError(f"src_format must be 'auto', 'hf', 'mmdet' or 'ours', got {src_format!r}")


def load_grounding_dino_checkpoint(model, path: str, src_format: str = 'auto',
                                   strict: bool = False) -> ConversionReport:
    """Read ``path``, convert to our keys, load into ``model``; returns the report."""
    converted, report = convert_state_dict(read_state_dict(path), src_format)
    return load_converted(model, converted, report, strict=strict)
