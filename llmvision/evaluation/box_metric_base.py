"""Shared lifecycle of the box-AP metrics (COCO, LVIS, LVIS fixed AP).

``process`` turns each model output (a ``DetDataSample`` or its ``to_dict()``) into a record
(``predictions.sample_to_record``: img_id + pred boxes ``[K, 4]`` pixel xyxy in the original image,
scores ``[K]``, labels ``[K]`` indexing the annotation file's sorted category ids).
``compute_metrics`` drops padded duplicates (same ``img_id``, first kept), optionally dumps the
result json (``outfile_prefix + '.bbox.json'``), and evaluates the processed images only.
"""
from abc import abstractmethod
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from .box_ap import BoxDetections, BoxGroundTruth
from .ground_truth import build_ground_truth
from .predictions import (
    dedupe_records,
    load_results_json,
    records_to_detections,
    records_to_results,
    results2json,
    results_to_detections,
    sample_to_record,
)


class BoxAPMetricBase(BaseMetric):
    """Base for box-AP metrics over a COCO/LVIS-format annotation file.

    Args:
        ann_file: COCO/LVIS json (loaded on first use).
        outfile_prefix: when set, results are also written to ``{outfile_prefix}.bbox.json``.
    Subclasses set ``protocol`` and implement :meth:`_evaluate` (optionally :meth:`_select`).
    """
    protocol = 'coco'

    def __init__(self, ann_file: str, outfile_prefix: Optional[str] = None, collect_device: str = 'cpu',
                 prefix: Optional[str] = None, collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.ann_file = ann_file
        self.outfile_prefix = outfile_prefix
        self._gt: Optional[BoxGroundTruth] = None

    @property
    def gt(self) -> BoxGroundTruth:
        if self._gt is None:
            self._gt = build_ground_truth(self.ann_file, self.protocol)
        return self._gt

    def process(self, data_batch, data_samples: Sequence) -> None:
        for sample in data_samples:
            self.results.append(sample_to_record(sample))

    def _select(self, dt: BoxDetections) -> BoxDetections:
        """Protocol-specific detection cap (identity by default); ``dt`` is in input order."""
        return dt

    @abstractmethod
    def _evaluate(self, dt: BoxDetections, img_subset: Optional[np.ndarray]) -> Dict[str, float]:
        """Evaluate detections on the image positions ``img_subset`` (``None``: all images)."""

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        records = dedupe_records(results, 'img_id')
        if len(records) < len(results):
            print_log(f'{type(self).__name__}: dropped {len(results) - len(records)} duplicate samples '
                      '(distributed padding)', logger='current')
        gt = self.gt
        dt = records_to_detections(records, gt, source=type(self).__name__)
        if self.outfile_prefix:
            out = results2json(records_to_results(records, gt.cat_ids), f'{self.outfile_prefix}.bbox.json')
            print_log(f'results written to {out}', logger='current')
        pos = {int(i): p for p, i in enumerate(gt.img_ids)}
        subset = np.array(sorted(pos[r['img_id']] for r in records), dtype=np.int64)
        return self._evaluate(self._select(dt), subset)

    def evaluate_file(self, result_file: str, img_ids: Optional[Sequence[int]] = None) -> Dict[str, float]:
        """Evaluate a result-format json (``image_id, category_id, bbox xywh, score``) offline.

        Args:
            img_ids: images to evaluate (default: every image of the annotation file).
        """
        gt = self.gt
        results = load_results_json(result_file)
        dt = results_to_detections(results, gt, source=result_file)
        subset = None
        if img_ids is not None:
            pos = {int(i): p for p, i in enumerate(gt.img_ids)}
            unknown = [int(i) for i in img_ids if int(i) not in pos]
            if unknown:
                raise ValueError(f'img_ids not in {self.ann_file}: {unknown[:5]}')
            subset = np.array(sorted(pos[int(i)] for i in img_ids), dtype=np.int64)
        return self._evaluate(self._select(dt), subset)

