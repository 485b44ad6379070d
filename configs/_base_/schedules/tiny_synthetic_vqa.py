"""CPU schedule of the tiny multimodal LLMs on the synthetic VQA set: one question per training sample
(``vqa/train.json``; multi-turn conversations let earlier answers stand in for the image), 32 per step; AdamW
lr 2e-3 (weight decay 0, clip 1.0), 30 warm-up iterations then cosine to 1% over ``max_iters`` (1500, ~7 min on
one CPU thread for the tiny LLaVA); one checkpoint at the end, gloo. Evaluation is single-turn
(``vqa/val.json``). Leaves apply ``tiny_train_data`` and ``tiny_hooks``: ``train_dataloader.update(tiny_train_data)``;
a leaf that changes ``max_iters`` also sets the schedule's ends."""
from mmengine.hooks import CheckpointHook, LoggerHook
from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop, TestLoop, ValLoop
from torch.optim import AdamW

max_iters = 1500
lr = 2e-3
warmup_iters = 30

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
tiny_train_data = dict(batch_size=32, dataset=dict(ann_file='vqa/train.json'))
tiny_hooks = dict(logger=dict(type=LoggerHook, interval=50),
                  checkpoint=dict(type=CheckpointHook, interval=max_iters, by_epoch=False, max_keep_ckpts=1))
