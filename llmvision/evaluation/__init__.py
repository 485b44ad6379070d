"""Evaluation metrics. Importing this package registers every metric in ``METRICS``.

- :class:`LVISMetric`, :class:`LVISFixedAPMetric`: LVIS box AP (standard / fixed AP).
- :class:`CocoMetric`: COCO box AP. :class:`MultiDatasetMetric`: per-dataset metrics + mean (ODinW).
- :class:`RefExpMetric`: referring-expression precision@k.
- :class:`VQAAccuracyMetric`: VQA normalised exact match per question type, with the text-only prior.
- :class:`RECAccuracyMetric`: REC accuracy (IoU > 0.5) and mean IoU in the test loop.
- ``rec_accuracy`` / ``accuracy_table``: REC selector accuracy (IoU > 0.5) and its table.
- ``evaluate_boxes``: the vectorised COCO/LVIS evaluator behind the box metrics.
- ``results2json``: atomic result-format json dump.
- ``make_detection_set``: a seeded synthetic COCO/LVIS ground truth + detections set (public helper for
  evaluator parity tests and ``benchmarks/eval_speed.py``).
"""
from .box_ap import BoxDetections, BoxGroundTruth, evaluate_boxes
from .coco_metric import CocoMetric
from .ground_truth import build_ground_truth
from .keypoint_metric import KeypointOKSMetric
from .lvis_metric import LVISFixedAPMetric, LVISMetric
from .multi_dataset_metric import MultiDatasetMetric
from .predictions import load_results_json, results2json, results_to_detections
from .rec_accuracy import best_candidate, iou_passes, oracle_box, rec_accuracy, top_candidate_box
from .rec_metric import RECAccuracyMetric
from .rec_table import accuracy_table, detector_only, format_table, oracle
from .ref_parse_metric import RefParseMetric
from .refexp_metric import RefExpMetric
from .synthetic import make_detection_set
from .vqa_metric import VQAAccuracyMetric, answer_prior, normalize_answer

__all__ = ['BoxDetections', 'BoxGroundTruth', 'evaluate_boxes', 'CocoMetric', 'build_ground_truth',
           'LVISFixedAPMetric', 'LVISMetric', 'MultiDatasetMetric', 'load_results_json', 'results2json',
           'results_to_detections', 'RefExpMetric', 'RECAccuracyMetric', 'best_candidate', 'iou_passes',
           'oracle_box', 'rec_accuracy', 'top_candidate_box', 'accuracy_table', 'detector_only', 'format_table',
           'oracle', 'VQAAccuracyMetric', 'answer_prior', 'normalize_answer', 'make_detection_set']
