"""Tiny LLaVolta trained from scratch on the synthetic VQA set on a CPU (the "it learns" run of issue 14).

The tiny LLaVA (``configs/_base_/models/tiny_lmm_synthetic.py``: pre-trained frozen 2-layer CLIP tower, 16 visual
tokens, ``mlp2x_gelu``, random 4-layer Qwen2 of width 128) with the four-stage "deeper then wider" compression
scaled to 4 layers (K=1 for the paper's 2 of 32, K=2 for 16 of 32): (K=1,S=8) -> (K=2,S=8) -> (K=2,S=2) ->
uncompressed, a quarter of training each, tested uncompressed. Same data, tower (stage 0:
``configs/llava/tiny_vision_pretrain_synthetic.py``), schedule (``configs/_base_/schedules/tiny_synthetic_vqa.py``:
one question per sample, 32 per step, AdamW lr 2e-3, 1500 iterations) and evaluation as
``configs/llava/llava_tiny_synthetic.py``, its uncompressed reference:

    flock /tmp/llmvision_heavy.lock nice -n -5 python benchmarks/lmm_learning.py \\
        --config configs/llavolta/llavolta_tiny_synthetic.py

Numbers: benchmarks/RESULTS.md ("LLaVolta it learns").
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_vqa import *
    from .._base_.models.llavolta import *
    from .._base_.models.tiny_lmm_synthetic import *
    from .._base_.runtime import *
    from .._base_.schedules.tiny_synthetic_vqa import *

model.update(compressor=llavolta_staged)
custom_hooks = [dict(llavolta_schedule, shallow_layer=1, deep_layer=2, num_layers=4)]
default_hooks.update(tiny_hooks)
env_cfg.update(dist_cfg=dict(backend='gloo'))
