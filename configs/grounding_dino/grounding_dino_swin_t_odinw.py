"""Zero-shot test of Grounding-DINO Swin-T (MM-GDINO-T / LLMDet-T detector)
on ODinW-13 (13 sets, own names each), COCO AP per set and the mean.

    python tools/test.py configs/grounding_dino/grounding_dino_swin_t_odinw.py CKPT

CKPT: our checkpoint, or a release converted with ``tools/convert_checkpoint.py``; BERT from
``checkpoints/bert-base-uncased``. Data layout: the docstring of
``configs/_base_/datasets/odinw.py``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.odinw import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_swin_t import *  # noqa: F401,F403
