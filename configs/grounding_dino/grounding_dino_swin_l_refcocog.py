"""Zero-shot test of Grounding-DINO Swin-L (LLMDet-L detector, 5 feature levels)
on RefCOCOg (umd) val, precision@1/5/10; splits val, test.

    python tools/test.py configs/grounding_dino/grounding_dino_swin_l_refcocog.py CKPT

CKPT: our checkpoint, or a release converted with ``tools/convert_checkpoint.py``; BERT from
``checkpoints/bert-base-uncased``. Data layout: the docstring of
``configs/_base_/datasets/refcoco.py``.
Another split: ``--cfg-options test_dataloader.dataset.split=test test_evaluator.split=test``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.refcoco import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .grounding_dino_swin_l import *  # noqa: F401,F403

refcoco_dataset = 'refcocog'
refcoco_split_by = 'umd'

test_dataloader['dataset'].update(dataset=refcoco_dataset, split_by=refcoco_split_by)  # noqa: F405

# REC test as released (MM-GDINO's refexp configs, which LLMDet evaluates with): the 30 best boxes per
# expression; LLMDet's spatial re-scoring re-ranks only these (300, the detection default, restores ours)
model['test_cfg']['max_per_img'] = 30  # noqa: F405
