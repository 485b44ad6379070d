"""Tiny synthetic REF-VLM, detection evaluation: COCO box AP on the val "Find every {category}." questions.

Ground truth ``ref_vlm/val_det_coco.json``: one pseudo image per question holding the asked category's boxes (an
absent category: no boxes, so any answer box is a false positive). A phrase names its category (``class_names``).

    python tools/test.py configs/ref_vlm/ref_vlm_tiny_synthetic_det_eval.py CHECKPOINT
"""
from mmengine.config import read_base

with read_base():
    from .ref_vlm_tiny_synthetic import *  # noqa: F401,F403

from llmvision.evaluation.coco_metric import CocoMetric
from llmvision.evaluation.ref_parse_metric import RefParseMetric

model.update(class_names=[f'{c} {s}' for c in ('red', 'green', 'blue', 'yellow', 'purple', 'orange')  # noqa: F405
                          for s in ('circle', 'square', 'triangle', 'star')])
test_dataloader.dataset.question_types = ['det']  # noqa: F405
test_evaluator = [dict(type=CocoMetric, ann_file=data_root + 'ref_vlm/val_det_coco.json'),  # noqa: F405
                  dict(type=RefParseMetric)]
