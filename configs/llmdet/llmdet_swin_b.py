"""LLMDet-B: Grounding-DINO Swin-B co-trained with an LLM captioner (REFERENCE.md section 2).

    bash dist_train.sh configs/llmdet/llmdet_swin_b.py 8

Detector: ``configs/grounding_dino/grounding_dino_swin_b.py`` (start from an MM-GDINO checkpoint via
``load_from``). Captioner: Qwen2-0.5B-Instruct (frozen) + LoRA r 128 / alpha 256 on q,k,v,o,gate,up,down;
image captions from the encoder memory (20x20 stride-32 + separator + 27x27 stride-16 = 1130 tokens,
answers <= 1600 tokens), region captions for up to 16 matched queries (answers <= 40 tokens).
Frozen: Swin, neck, LLM base; BERT at lr x 0.1. Schedule: llmdet_150k (AdamW 1e-4, clip 0.1, fp16
AMP, 150k iterations, 2 images per GPU x 8). Data: GroundingCap-style ODVG grounding lines with long
captions, ``configs/_base_/datasets/grounding_cap_odvg.py``; validation on LVIS minival.
Published (B): LVIS minival 48.3 AP.

Offline, local folders: ``checkpoints/bert-base-uncased``, ``checkpoints/Qwen2-0.5B-Instruct``
(config, safetensors, tokenizer files).

bf16: set ``llm_dtype = torch.bfloat16`` and ``optim_wrapper.update(type=BF16OptimWrapper)``
(``llmvision.engine``): bf16 autocast, no fp16 loss scaler (which cannot unscale bf16 weights).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.grounding_cap_odvg import *  # noqa: F401,F403
    from .._base_.datasets.lvis_minival import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llmdet_150k import *  # noqa: F401,F403
    from ..grounding_dino.grounding_dino_swin_b import *  # noqa: F401,F403

import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM

from llmvision.models.captioners import LLMCaptioner
from llmvision.models.detectors import LLMDet

# ------------------------------------------------------------------ settings
llm_path = 'checkpoints/Qwen2-0.5B-Instruct'
llm_dtype = torch.float32

# ------------------------------------------------------------------ model
model.update(  # noqa: F405
    type=LLMDet,
    freeze_backbone=True,
    freeze_neck=True,
    captioner=dict(
        type=LLMCaptioner,
        llm=dict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path=llm_path,
                 dtype=llm_dtype),
        tokenizer=llm_path,
        lora=dict(type=LoraConfig, r=128, lora_alpha=256, lora_dropout=0.05, task_type='CAUSAL_LM',
                  target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                                  'down_proj']),
        feat_dims=256,
        image_token_levels=(2, 1),
        image_token_sizes=(20, 27),
        max_image_caption_len=1600,
        max_region_caption_len=40,
        max_regions=16,
        image_loss_weight=1.0,
        region_loss_weight=1.0,
        region_cross_attn=None,  # LLMDet's optional MSDA blocks: dict(every=4, embed_dims=256, ...)
        gradient_checkpointing=True))

# ------------------------------------------------------------------ schedule
optim_wrapper['paramwise_cfg'] = paramwise_cfg  # noqa: F405
