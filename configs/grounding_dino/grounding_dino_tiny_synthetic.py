"""Tiny Grounding-DINO trained from scratch on the synthetic grounding set (CPU minutes).

The quickstart's model: ``grounding_dino_tiny.py`` (Swin-T architecture scaled down, BERT built
from the set's own local tokenizer), trained on ODVG captions and evaluated with LVIS fixed AP
on the val split (all 24 names as the prompt).
Data: ``python tools/make_synthetic_dataset.py --out data/synthetic``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_grounding import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_tiny import *  # noqa: F401,F403

from mmengine.optim import LinearLR, MultiStepLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

from llmvision.engine import RNGStateHook

# ---------------------------------------------------------------- settings
max_iters = 3000
lr = 1e-3

# ---------------------------------------------------------------- schedule
optim_wrapper = dict(
    type=OptimWrapper,
    optimizer=dict(type=AdamW, lr=lr, weight_decay=1e-4),
    clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type=LinearLR, start_factor=0.1, by_epoch=False, begin=0, end=100),
    dict(type=MultiStepLR, by_epoch=False, milestones=[int(max_iters * 0.8)], gamma=0.1),
]
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters, val_interval=max_iters)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)

default_hooks.update(  # noqa: F405
    logger=dict(type=LoggerHook, interval=20),  # noqa: F405
    checkpoint=dict(type=CheckpointHook, interval=500, by_epoch=False, max_keep_ckpts=2))  # noqa: F405
custom_hooks = [dict(type=RNGStateHook)]
