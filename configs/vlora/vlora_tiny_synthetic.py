"""Tiny VLoRA trained from scratch on the synthetic VQA set on a CPU (the "it learns" run of issue 13).

The tiny LLaVA's parts (``configs/_base_/models/tiny_lmm_synthetic.py``: a pre-trained frozen 2-layer CLIP tower
with 16 patch tokens of width 64 (stage 0: ``configs/llava/tiny_vision_pretrain_synthetic.py``), a random 4-layer
Qwen2 of width 128 with GQA) with VLoRA in place of the projector: the LLM sees the question text only; a
perceptual weights generator (d = 64, 2 blocks, 4 heads, rank 16, alpha 16, q/k/v/o/m, skip 2 -> layers 1 and 3)
turns the 16 visual tokens into per-image LoRA factors. Same data, schedule (one question per sample, 32 per step,
AdamW lr 2e-3, 1500 iterations, warm-up + cosine) and evaluation as the tiny LLaVA
(``configs/_base_/schedules/tiny_synthetic_vqa.py``):

    flock /tmp/llmvision_heavy.lock nice -n -5 python benchmarks/lmm_learning.py \\
        --config configs/vlora/vlora_tiny_synthetic.py

Numbers: benchmarks/RESULTS.md ("VLoRA it learns").
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_vqa import *
    from .._base_.models.tiny_lmm_synthetic import *
    from .._base_.models.vlora import *
    from .._base_.runtime import *
    from .._base_.schedules.tiny_synthetic_vqa import *

model.update(vlora_model)
model.weight_generator.update(dim=64, depth=2, num_heads=4, rank=16, alpha=16, skip=2)
train_dataloader.update(tiny_train_data)
default_hooks.update(tiny_hooks)
env_cfg.update(dist_cfg=dict(backend='gloo'))
