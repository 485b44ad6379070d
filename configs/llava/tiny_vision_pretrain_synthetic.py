"""Pre-train the tiny LLaVA's vision tower on the synthetic scenes (stage 0 of the tiny LLaVA, CLIP's stand-in).

``PatchTagPretrainer``: the tower of ``configs/_base_/models/tiny_lmm_synthetic.py`` (``tiny_vision_tower``) +
a linear head; each of the 16 patch tokens of layer -2 (the layer LLaVA reads) predicts the categories whose box
centre lies in its 16x16 cell (24 = 6 colours x 4 shapes; BCE, positive weight 5). Data: the detection ODVG
lines of the synthetic TRAIN split (the VQA val images are not used), squared as the VQA dataset squares them.
64 images per step, AdamW lr 2e-3 (weight decay 0.01), 30 warm-up iterations then cosine, 600 iterations
(~5 min on one CPU thread); the checkpoint ``work_dirs/tiny_vision_pretrain_synthetic/iter_600.pth`` is what the
tiny LLaVA / VLoRA / LLaVolta configs load (``tiny_vision_checkpoint``):

    python tools/train.py configs/llava/tiny_vision_pretrain_synthetic.py
    python tools/train.py configs/llava/llava_tiny_synthetic.py
"""
from mmengine.config import read_base
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.hooks import CheckpointHook
from mmengine.optim import CosineAnnealingLR, LinearLR, OptimWrapper
from mmengine.runner import IterBasedTrainLoop
from torch.optim import AdamW

from llmvision.datasets.patch_tags import PatchTagDataset
from llmvision.models.lmm.patch_tagger import PatchTagPretrainer

with read_base():
    from .._base_.datasets.synthetic_vqa import data_root, image_size
    from .._base_.models.tiny_lmm_synthetic import tiny_vision_tower
    from .._base_.runtime import *  # noqa: F401,F403

max_iters = 600
lr = 2e-3
model = dict(type=PatchTagPretrainer, vision_encoder=tiny_vision_tower, num_classes=24, vision_feature_layer=-2,
             pos_weight=5.0)
train_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=PatchTagDataset, data_root=data_root, ann_file='odvg/train_detection.jsonl',
                 label_map_file='odvg/label_map.json', data_prefix=dict(img='images/'), image_size=image_size,
                 image_aspect='pad'))
optim_wrapper = dict(type=OptimWrapper, optimizer=dict(type=AdamW, lr=lr, weight_decay=0.01),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [
    dict(type=LinearLR, start_factor=0.01, by_epoch=False, begin=0, end=30),
    dict(type=CosineAnnealingLR, by_epoch=False, begin=30, end=max_iters, T_max=max_iters - 30, eta_min=lr * 0.01),
]
train_cfg = dict(type=IterBasedTrainLoop, max_iters=max_iters)
default_hooks.update(checkpoint=dict(type=CheckpointHook, interval=max_iters, by_epoch=False,  # noqa: F405
                                     max_keep_ckpts=1))
env_cfg.update(dist_cfg=dict(backend='gloo'))  # noqa: F405
