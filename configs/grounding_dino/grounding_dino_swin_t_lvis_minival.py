"""Zero-shot test of Grounding-DINO Swin-T (MM-GDINO-T / LLMDet-T detector)
on LVIS v1 minival (5k images, all 1203 names in chunks of 40), LVIS fixed AP.

    python tools/test.py configs/grounding_dino/grounding_dino_swin_t_lvis_minival.py CKPT

CKPT: our checkpoint, or a release converted with ``tools/convert_checkpoint.py``; BERT from
``checkpoints/bert-base-uncased``. Data layout: the docstring of
``configs/_base_/datasets/lvis_minival.py``.
Published: LLMDet-T 44.7 AP (APr 37.3); MM-GDINO-T 41.4.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.lvis_minival import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_swin_t import *  # noqa: F401,F403
