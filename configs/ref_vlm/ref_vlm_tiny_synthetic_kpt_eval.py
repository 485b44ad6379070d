"""Tiny synthetic REF-VLM, keypoint evaluation: OKS AP (pycocotools) on the val "Find the keypoints of every
{category}." questions; ground truth ``ref_vlm/val_kpt_coco.json`` (one pseudo image per question, 5 keypoints).

    python tools/test.py configs/ref_vlm/ref_vlm_tiny_synthetic_kpt_eval.py CHECKPOINT
"""
from mmengine.config import read_base

with read_base():
    from .ref_vlm_tiny_synthetic import *  # noqa: F401,F403

from llmvision.evaluation.keypoint_metric import KeypointOKSMetric
from llmvision.evaluation.ref_parse_metric import RefParseMetric

test_dataloader.dataset.question_types = ['kpt']  # noqa: F405
test_evaluator = [dict(type=KeypointOKSMetric, ann_file=data_root + 'ref_vlm/val_kpt_coco.json',  # noqa: F405
                       sigmas=0.05),
                  dict(type=RefParseMetric)]
