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
    from .._base_.schedules.synthetic_tiny import *  # noqa: F401,F403
    from .grounding_dino_tiny import *  # noqa: F401,F403

default_hooks.update(  # noqa: F405
    logger=dict(type=LoggerHook, interval=20),  # noqa: F405
    checkpoint=dict(type=CheckpointHook, interval=500, by_epoch=False, max_keep_ckpts=2))  # noqa: F405
