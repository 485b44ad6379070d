"""Tiny LLMDet on the synthetic set: the tiny Grounding-DINO + a captioner around a random 4-layer
Qwen2 (the set's local byte-level tokenizer) with LoRA; captions are the ODVG "conversations"
descriptions (image level) and the region phrases (region level). Runs on CPU.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_grounding import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.synthetic_tiny import *  # noqa: F401,F403
    from ..grounding_dino.grounding_dino_tiny import *  # noqa: F401,F403

from peft import LoraConfig
from transformers import Qwen2Config

from llmvision.models.captioners import LLMCaptioner
from llmvision.models.detectors import LLMDet
from llmvision.utils.hf_builder import causal_lm_from_config

llm_tokenizer = 'data/synthetic/llm_tokenizer'

model.update(  # noqa: F405
    type=LLMDet,
    captioner=dict(
        type=LLMCaptioner,
        llm=dict(type=causal_lm_from_config, seed=0,
                 config=dict(type=Qwen2Config, vocab_size=896, hidden_size=64, intermediate_size=128,
                             num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                             initializer_range=0.2, tie_word_embeddings=False)),
        tokenizer=llm_tokenizer,
        lora=dict(type=LoraConfig, r=8, lora_alpha=16, lora_dropout=0.0,
                  target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                                  'down_proj']),
        feat_dims=embed_dims,  # noqa: F405
        image_token_sizes=(4, 6),
        max_image_caption_len=96,
        max_region_caption_len=16,
        max_regions=16))

# the captioner needs captions: train on the grounding form (long "conversations" descriptions
# and region phrases) instead of the base config's detection form
train_dataloader['dataset'].update(  # noqa: F405
    ann_file='odvg/train_grounding.jsonl', label_map_file=None)

default_hooks.update(  # noqa: F405
    logger=dict(type=LoggerHook, interval=20),  # noqa: F405
    checkpoint=dict(type=CheckpointHook, interval=500, by_epoch=False, max_keep_ckpts=2))  # noqa: F405
