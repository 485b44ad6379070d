"""Tiny LLaVA trained from scratch on the synthetic VQA set on a CPU (the "it learns" run of issue 12).

A tiny CLIP vision tower built from its config (64x64 image, 16x16 patches -> 16 visual tokens, 2 layers of
width 64, TRAINED: a random frozen tower gives too weak features), the ``mlp2x_gelu`` projector and a random
4-layer Qwen2 of width 128 with the set's own byte-level BPE tokenizer (730 tokens). Chatml prompts without a
system turn; loss on the answers only. Training conversations hold all questions of an image (caption last:
``vqa/train_multiturn.json``), 16 images per step; AdamW lr 2e-3, warm-up then cosine, 500 steps (the
it-learns run of RESULTS.md: 1000, through ``--cfg-options``, see benchmarks/lmm_learning.py).

Data: ``python tools/make_synthetic_dataset.py --out data/synthetic_vqa --num-train 4000 --num-val 300
--image-size 64 64``. Train + evaluate + noise-image evaluation, with the per-type table:
``python benchmarks/lmm_learning.py --config configs/llava/llava_tiny_synthetic.py``.
Numbers: benchmarks/RESULTS.md ("LLaVA it learns").
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_vqa import *  # noqa: F401,F403
    from .._base_.models.tiny_lmm_synthetic import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_synthetic_vqa import *  # noqa: F401,F403

# model (tiny CLIP + mlp2x_gelu + 4-layer Qwen2) and schedule (multi-turn data, 16 images per step, lr 2e-3,
# 500 steps) live in the two tiny bases, shared with configs/vlora/vlora_tiny_synthetic.py
train_dataloader.update(tiny_train_data)  # noqa: F405
default_hooks.update(tiny_hooks)  # noqa: F405
env_cfg.update(dist_cfg=dict(backend='gloo'))  # noqa: F405
