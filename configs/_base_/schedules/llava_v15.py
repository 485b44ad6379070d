"""LLaVA-1.5 schedule: 1 epoch, AdamW (weight decay 0), linear warm-up over the first 3% then cosine to 0, bf16,
gradient clipping at 1.0 (the HF Trainer default the original used). The leaf config sets the learning rate
(pre-train 1e-3, fine-tune 2e-5) and ``auto_scale_lr.base_batch_size`` (its global batch).

Global batch = ``train_dataloader.batch_size`` x GPUs x ``optim_wrapper.accumulative_counts``. mmengine rounds the
warm-up down to whole iterations: an epoch under 67 iterations gets a warm-up of 0-1 iterations and its learning
rate never leaves ``start_factor`` (LLaVA's sets have 2,180 / 5,197 iterations per epoch).
"""
from mmengine.optim import CosineAnnealingLR, LinearLR
from mmengine.runner import EpochBasedTrainLoop
from torch.optim import AdamW

from llmvision.engine.optim_wrappers import BF16OptimWrapper

max_epochs = 1
warmup_ratio = 0.03

optim_wrapper = dict(
    type=BF16OptimWrapper,
    optimizer=dict(type=AdamW, lr=2e-5, betas=(0.9, 0.999), weight_decay=0.0),
    clip_grad=dict(max_norm=1.0),
    accumulative_counts=1)
param_scheduler = [
    dict(type=LinearLR, start_factor=1e-5, by_epoch=True, begin=0, end=warmup_ratio * max_epochs,
         convert_to_iter_based=True),
    dict(type=CosineAnnealingLR, eta_min=0.0, by_epoch=True, begin=warmup_ratio * max_epochs, end=max_epochs,
         convert_to_iter_based=True),
]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=max_epochs)
auto_scale_lr = dict(enable=False, base_batch_size=128)
