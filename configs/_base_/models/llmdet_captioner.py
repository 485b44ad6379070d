"""LLMDet's captioner (REFERENCE.md section 2): Qwen2-0.5B-Instruct (frozen, local folder) + LoRA
r 128 / alpha 256 on q,k,v,o,gate,up,down; image captions from the encoder memory (20x20 stride-32
+ separator + 27x27 stride-16 = 1130 tokens, answers <= 1600 tokens), region captions for up to 16
matched queries (answers <= 40 tokens). Leaf configs set ``model.update(type=LLMDet,
captioner=captioner)``.

bf16: set ``llm_dtype = torch.bfloat16`` in the leaf and ``optim_wrapper.update(type=BF16OptimWrapper)``
(or ``tools/train.py --amp bf16``): bf16 autocast, no fp16 loss scaler (which cannot unscale bf16).
"""
import torch
from peft import LoraConfig
from transformers import AutoModelForCausalLM

from llmvision.models.captioners import LLMCaptioner

llm_path = 'checkpoints/Qwen2-0.5B-Instruct'
llm_dtype = torch.float32

captioner = dict(
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
    gradient_checkpointing=True)
