"""Evaluate the tiny synthetic Grounding-DINO on the synthetic RefCOCO val split (P@1/5/10).

    python tools/test.py configs/grounding_dino/grounding_dino_tiny_synthetic_refcoco.py CKPT
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.synthetic_refcoco import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_tiny import *  # noqa: F401,F403

from mmengine.runner import TestLoop

test_cfg = dict(type=TestLoop)
