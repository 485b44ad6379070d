"""Schedule of the tiny synthetic runs (CPU minutes): AdamW, warm-up, one step decay."""
from mmengine.optim import LinearLR, MultiStepLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

from llmvision.engine import RNGStateHook

max_iters = 1500
lr = 1e-3

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
custom_hooks = [dict(type=RNGStateHook)]
