"""LVIS box AP: the standard protocol (top 300 per image) and fixed AP (top 10,000 per category).

Fixed AP (Dave et al., "Evaluating Large-Vocabulary Object Detectors", 2021): keep each category's
``max_dets_per_cat`` highest-scoring detections over the whole set, no per-image cap, then LVIS AP with
``max_dets=-1``. Both report AP, AP50, AP75, APs, APm, APl, APr, APc, APf and AR, ARs, ARm, ARl,
identical to lvis-api 0.5.3 (see ``box_ap.py``), computed by our vectorised evaluator.
"""
from typing import Dict, Optional

import numpy as np
from mmengine.logging import print_log

from llmvision.registry import METRICS

from .box_ap import BoxDetections, evaluate_boxes
from .box_metric_base import BoxAPMetricBase
from .predictions import top_k_per_category, top_k_per_image


@METRICS.register_module()
class LVISMetric(BoxAPMetricBase):
    """Standard LVIS box AP: each image keeps its ``max_dets_per_image`` best detections.

    Args:
        ann_file: LVIS-format json (images with ``neg_category_ids`` / ``not_exhaustive_category_ids``,
            categories with ``frequency``). ``labels`` index its sorted category ids.
        max_dets_per_image: per-image cap (LVIS: 300; ``None`` or -1: none).
    """
    protocol = 'lvis'
    default_prefix = 'lvis'

    def __init__(self, ann_file: str, max_dets_per_image: Optional[int] = 300, **kwargs) -> None:
        super().__init__(ann_file, **kwargs)
        self.max_dets_per_image = max_dets_per_image

    def _select(self, dt: BoxDetections) -> BoxDetections:
        cap = self.max_dets_per_image
        return dt if cap is None or cap < 0 else top_k_per_image(dt, cap)

    def _evaluate(self, dt: BoxDetections, img_subset: Optional[np.ndarray]) -> Dict[str, float]:
        return dict(evaluate_boxes(self.gt, dt, 'lvis', img_subset=img_subset).stats)


@METRICS.register_module()
class LVISFixedAPMetric(LVISMetric):
    """LVIS fixed AP: the top ``max_dets_per_cat`` detections per category over the set, no per-image cap.

    Warns (once per evaluation) how many categories got fewer than ``max_dets_per_cat`` detections:
    the protocol assumes the detector outputs enough of them (e.g. 300 per image is not enough).
    """
    default_prefix = 'lvis_fixed_ap'

    def __init__(self, ann_file: str, max_dets_per_cat: int = 10000, **kwargs) -> None:
        kwargs.setdefault('max_dets_per_image', None)
        super().__init__(ann_file, **kwargs)
        if max_dets_per_cat <= 0:
            raise ValueError(f'max_dets_per_cat must be positive, got {max_dets_per_cat}')
        self.max_dets_per_cat = max_dets_per_cat

    def _select(self, dt: BoxDetections) -> BoxDetections:
        dt = top_k_per_category(super()._select(dt), self.max_dets_per_cat)
        counts = np.bincount(dt.cat_index, minlength=len(self.gt.cat_ids))
        short = int((counts < self.max_dets_per_cat).sum())
        if short:
            print_log(f'LVISFixedAPMetric: {short}/{len(counts)} categories have fewer than '
                      f'{self.max_dets_per_cat} detections', logger='current')
        return dt
