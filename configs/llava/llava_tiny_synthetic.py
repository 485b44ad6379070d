"""Tiny LLaVA trained from scratch on the synthetic VQA set on a CPU (the "it learns" run of issue 12).

LLaVA in miniature: a tiny CLIP tower (64x64 image, 16x16 patches -> 16 visual tokens, 2 layers of width 64, a
per-pixel stem) PRE-TRAINED on the synthetic scenes and FROZEN (stage 0,
``configs/llava/tiny_vision_pretrain_synthetic.py``, as LLaVA starts from a pretrained CLIP), the ``mlp2x_gelu``
projector and a random 4-layer Qwen2 of width 128 with the set's own byte-level BPE tokenizer, trained together.
Chatml prompts without a system turn; loss on the answers only; one question per sample, 32 per step; AdamW lr
2e-3, warm-up then cosine, 1500 steps (``configs/_base_/{models/tiny_lmm_synthetic,schedules/tiny_synthetic_vqa}.py``).

Data + stage 0 + this stage + evaluation with and without the image (per-type table):

    python tools/make_synthetic_dataset.py --out data/synthetic_vqa --num-train 8000 --num-val 300 \
        --image-size 64 64 --categories uniform --backgrounds plain gradient --max-objects 4
    python tools/train.py configs/llava/tiny_vision_pretrain_synthetic.py
    python benchmarks/lmm_learning.py --config configs/llava/llava_tiny_synthetic.py

Numbers: benchmarks/RESULTS.md ("LLaVA it learns").
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_vqa import *  # noqa: F401,F403
    from .._base_.models.tiny_lmm_synthetic import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_synthetic_vqa import *  # noqa: F401,F403

# model (pre-trained frozen tiny CLIP + mlp2x_gelu + 4-layer Qwen2) and schedule (one question per sample, 32 per
# step, lr 2e-3, 1500 steps) live in the two tiny bases, shared with configs/vlora/vlora_tiny_synthetic.py
train_dataloader.update(tiny_train_data)  # noqa: F405
default_hooks.update(tiny_hooks)  # noqa: F405
env_cfg.update(dist_cfg=dict(backend='gloo'))  # noqa: F405
