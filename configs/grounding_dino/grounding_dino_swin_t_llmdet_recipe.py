"""Grounding-DINO Swin-T pre-training with the LLMDet-T detector recipe (REFERENCE.md section 1),
validated on LVIS minival (fixed AP) every 30k iterations.

    bash dist_train.sh configs/grounding_dino/grounding_dino_swin_t_llmdet_recipe.py 8

AdamW lr 1e-4, weight decay 1e-4, grad clip 0.1, lr x 0.1 for the Swin backbone and BERT; 150k
iterations, 1k warm-up, decay x 0.1 at 120k / 140k; 2 images per GPU x 8 GPUs; fp16 AMP; flip +
multi-scale short side 480-800, long <= 1333. Data: Objects365 (detection form) + GoldG (grounding
form), ``configs/_base_/datasets/o365_goldg_odvg.py``; BERT from ``checkpoints/bert-base-uncased``.
Swin-T ImageNet weights: ``model.backbone.init_cfg=dict(type='Pretrained', checkpoint=...)`` or
``load_from`` a converted checkpoint.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.lvis_minival import *  # noqa: F401,F403
    from .._base_.datasets.o365_goldg_odvg import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llmdet_150k import *  # noqa: F401,F403
    from .grounding_dino_swin_t import *  # noqa: F401,F403

optim_wrapper['paramwise_cfg'] = paramwise_cfg  # noqa: F405
