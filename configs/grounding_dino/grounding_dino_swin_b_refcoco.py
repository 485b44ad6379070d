"""Zero-shot test of Grounding-DINO Swin-B (LLMDet-B detector)
on RefCOCO (unc) val, precision@1/5/10; splits val, testA, testB.

    python tools/test.py configs/grounding_dino/grounding_dino_swin_b_refcoco.py CKPT

CKPT: our checkpoint, or a release converted with ``tools/convert_checkpoint.py``; BERT from
``checkpoints/bert-base-uncased``. Data layout: the docstring of
``configs/_base_/datasets/refcoco.py``.
Another split: ``--cfg-options test_dataloader.dataset.split=testA test_evaluator.split=testA``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.refcoco import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_swin_b import *  # noqa: F401,F403

# REC test as released (MM-GDINO's refexp configs, which LLMDet evaluates with): the 30 best boxes per
# expression; LLMDet's spatial re-scoring re-ranks only these (300, the detection default, restores ours)
model['test_cfg']['max_per_img'] = 30  # noqa: F405
