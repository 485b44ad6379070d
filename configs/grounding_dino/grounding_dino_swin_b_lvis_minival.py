"""Zero-shot test of Grounding-DINO Swin-B (LLMDet-B detector)
on LVIS v1 minival (5k images, all 1203 names in chunks of 40), LVIS fixed AP.

    python tools/test.py configs/grounding_dino/grounding_dino_swin_b_lvis_minival.py CKPT

CKPT: our checkpoint, or a release converted with ``tools/convert_checkpoint.py``; BERT from
``checkpoints/bert-base-uncased``. Data layout: the docstring of
``configs/_base_/datasets/lvis_minival.py``.
Published: LLMDet-B 48.3 AP.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.lvis_minival import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_swin_b import *  # noqa: F401,F403
