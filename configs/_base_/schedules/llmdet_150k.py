"""LLMDet / MM-GDINO training schedule (REFERENCE.md section 1): AdamW lr 1e-4, weight decay 1e-4,
grad-norm clip 0.1, fp16 AMP, 150k iterations at 16 images per step (2 per GPU x 8 GPUs), linear
warm-up over the first 1k iterations, lr x 0.1 at 120k and 140k.

The per-module lr multipliers (backbone / text encoder x 0.1) are the model's: a leaf config sets
``optim_wrapper['paramwise_cfg'] = paramwise_cfg`` from the model definition. bf16 instead of fp16:
``optim_wrapper.update(type=BF16OptimWrapper)`` (``llmvision.engine``), no loss scaler.
"""
from mmengine.optim import AmpOptimWrapper, LinearLR, MultiStepLR
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

from llmvision.engine import RNGStateHook

# ------------------------------------------------------------------ settings
max_iters = 150000
warmup_iters = 1000
milestones = [120000, 140000]
lr = 1e-4
weight_decay = 1e-4
val_interval = 30000  # LLMDet validates and saves every 30k of 150k

# ------------------------------------------------------------------ schedule
optim_wrapper = dict(
    type=AmpOptimWrapper,
    dtype='float16',
    loss_scale='dynamic',
    optimizer=dict(type=AdamW, lr=lr, weight_decay=weight_decay),
    clip_grad=dict(max_norm=0.1, norm_type=2))
param_scheduler = [
    dict(type=LinearLR, start_factor=0.001, by_epoch=False, begin=0, end=warmup_iters),
    dict(type=MultiStepLR, by_epoch=False, begin=0, end=max_iters, milestones=milestones, gamma=0.1),
]
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters, val_interval=val_interval)
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
custom_hooks = [dict(type=RNGStateHook)]
# lr above is for 16 images per step; mmengine rescales it to the real batch (on, as released)
auto_scale_lr = dict(enable=True, base_batch_size=16)
