"""Tiny LLaVA trained from scratch on the synthetic VQA set on a CPU (the "it learns" run of issue 12).

A tiny CLIP vision tower built from its config (64x64 image, 16x16 patches -> 16 visual tokens, 2 layers of
width 64, TRAINED: a random frozen tower gives too weak features), the ``mlp2x_gelu`` projector and a random
4-layer Qwen2 of width 128 with the set's own byte-level BPE tokenizer (730 tokens). Chatml prompts without a
system turn; loss on the answers only. Training conversations hold all questions of an image (caption last:
``vqa/train_multiturn.json``), 16 images per step; AdamW lr 2e-3, warm-up then cosine, 500 steps.

Data: ``python tools/make_synthetic_dataset.py --out data/synthetic_vqa --num-train 4000 --num-val 300
--image-size 64 64``. Train + evaluate + noise-image evaluation, with the per-type table:
``python benchmarks/lmm_learning.py --config configs/llava/llava_tiny_synthetic.py``.
Numbers: benchmarks/RESULTS.md ("LLaVA it learns").
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_vqa import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403

from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW
from transformers import CLIPVisionConfig, Qwen2Config

from llmvision.models.lmm.llava import LLaVAModel, vision_model_from_config
from llmvision.utils.hf_builder import causal_lm_from_config

# ---------------------------------------------------------------- settings
max_iters = 500
lr = 2e-3
warmup_iters = 30

# ---------------------------------------------------------------- model
model = dict(
    type=LLaVAModel,
    vision_encoder=dict(type=vision_model_from_config, seed=0,
                        config=dict(type=CLIPVisionConfig, image_size=64, patch_size=16, hidden_size=64,
                                    intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)),
    llm=dict(type=causal_lm_from_config, seed=0,
             config=dict(type=Qwen2Config, vocab_size=768, hidden_size=128, intermediate_size=256,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False)),
    tokenizer=data_root + 'llm_tokenizer',  # noqa: F405
    projector='mlp2x_gelu',
    freeze_vision=False,
    stop_strings=['<|im_end|>'],
    max_new_tokens=24)

# ---------------------------------------------------------------- data: all questions of an image in one
# conversation (caption last), 16 images (~65 answers) per step; evaluation stays single-turn (val.json)
train_dataloader.update(batch_size=16)  # noqa: F405
train_dataloader.dataset.update(ann_file='vqa/train_multiturn.json')  # noqa: F405

# ---------------------------------------------------------------- schedule
optim_wrapper = dict(type=OptimWrapper, optimizer=dict(type=AdamW, lr=lr, weight_decay=0.0),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=warmup_iters, end=max_iters, T_max=max_iters - warmup_iters,
         eta_min=lr * 0.01),
]
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
default_hooks.update(  # noqa: F405
    logger=dict(type=LoggerHook, interval=50),
    checkpoint=dict(type=CheckpointHook, interval=max_iters, by_epoch=False, max_keep_ckpts=1))
env_cfg.update(dist_cfg=dict(backend='gloo'))  # noqa: F405
