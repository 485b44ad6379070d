"""The language model of a LLaVA-OneVision-Qwen2 folder as a plain ``Qwen2ForCausalLM`` (LLMDet's LLM).

The released LLMDet trains its captioner on ``llava-onevision-qwen2-0.5b-ov`` (the authors' slightly fine-tuned
``my_llava-onevision-qwen2-0.5b-ov-2``), loaded with the original LLaVA-NeXT code as ``LlavaQwenForCausalLM``,
whose ``mm_projector`` and ``vision_tower`` it then deletes. Such a folder's ``config.json`` says
``"model_type": "llava"`` with the Qwen2 fields beside the multimodal ones, so ``AutoModelForCausalLM`` cannot
read it. :func:`qwen2_from_llava_onevision` builds the ``Qwen2Config`` from those fields and loads the language
weights (``model.embed_tokens``, ``model.layers.*``, ``model.norm``, ``lm_head``); the vision tower, projector
and ``image_newline`` weights are left out and named in the log. The pre-aligned projector goes into both of
the captioner's projectors through ``LLMCaptioner(projector_checkpoint=...)``.

    llm=dict(type=qwen2_from_llava_onevision, path='checkpoints/my_llava-onevision-qwen2-0.5b-ov-2',
             dtype=torch.float16)
"""
import json
import os
from typing import Optional

import torch
from mmengine.logging import print_log

_VISION_PREFIXES = ('model.vision_tower.', 'model.mm_projector.', 'model.image_newline', 'model.vision_resampler.')


def qwen2_from_llava_onevision(path: str, dtype: Optional[torch.dtype] = None, **kwargs):
    """Load the Qwen2 causal LM inside a LLaVA-OneVision(-Qwen2) checkpoint folder.

    Args:
        path: local folder with ``config.json`` and the weights (safetensors or ``pytorch_model*.bin``).
        dtype: parameter dtype (``None``: the checkpoint's / float32 as transformers decides).
        **kwargs: passed to ``Qwen2ForCausalLM.from_pretrained`` (``attn_implementation``, ...).

    Raises:
        FileNotFoundError: no ``config.json`` in ``path``.
        KeyError: a language-model weight is missing from the checkpoint, or a key outside the vision parts
            is not used (names listed).
    """
    from transformers import Qwen2Config, Qwen2ForCausalLM

    cfg_file = os.path.join(path, 'config.json')
    if not os.path.isfile(cfg_file):
        raise FileNotFoundError(f'{cfg_file!r} not found: give the local LLaVA-OneVision-Qwen2 folder')
    with open(cfg_file) as f:
        raw = json.load(f)
    known = set(Qwen2Config().to_dict())
    fields = {k: v for k, v in raw.items() if k in known and k not in ('model_type', 'architectures',
                                                                       'transformers_version')}
    config = Qwen2Config(**fields)
    config.architectures = ['Qwen2ForCausalLM']
    if dtype is not None:
        kwargs['dtype'] = dtype
    model, info = Qwen2ForCausalLM.from_pretrained(path, config=config, output_loading_info=True, **kwargs)
    missing = [k for k in info.get('missing_keys', ()) if not (k == 'lm_head.weight' and config.tie_word_embeddings)]
    unexpected = list(info.get('unexpected_keys', ()))
    left_out = [k for k in unexpected if k.startswith(_VISION_PREFIXES)]
    other = [k for k in unexpected if k not in left_out]
    if missing or other or info.get('mismatched_keys'):
        raise KeyError(f'{path}: LLaVA-OneVision language model does not match Qwen2ForCausalLM: missing '
                       f'{missing[:10]}, unused non-vision keys {other[:10]}, '
                       f'shape mismatches {list(info.get("mismatched_keys", ()))[:10]}')
    print_log(f'qwen2_from_llava_onevision: {path}: language model loaded; {len(left_out)} vision-side weights '
              f'left out (vision tower, mm_projector, image_newline)', logger='current')
    return model
