"""Zero-shot test of Grounding-DINO Swin-T (MM-GDINO-T / LLMDet-T detector)
on LVIS v1 val (all 1203 names in chunks of 40), LVIS fixed AP.

    python tools/test.py configs/grounding_dino/grounding_dino_swin_t_lvis_val.py CKPT

CKPT: our checkpoint, or a release converted with ``tools/convert_checkpoint.py``; BERT from
``checkpoints/bert-base-uncased``. Data layout: the docstring of
``configs/_base_/datasets/lvis_minival.py``.
Published: LLMDet-T 34.9 AP.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.lvis_minival import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_swin_t import *  # noqa: F401,F403

# the full val split: the minival base's pipeline and metric with the official val json
lvis_ann_file = 'lvis_v1_val.json'
val_dataloader['dataset']['ann_file'] = lvis_ann_file  # noqa: F405
test_dataloader['dataset']['ann_file'] = lvis_ann_file  # noqa: F405
val_evaluator['ann_file'] = data_root + lvis_ann_file  # noqa: F405
test_evaluator['ann_file'] = data_root + lvis_ann_file  # noqa: F405
