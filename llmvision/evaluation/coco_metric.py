"""COCO box AP (pycocotools' ``COCOeval`` numbers, our vectorised evaluator).

Reports, with mmdet's names: bbox_mAP, bbox_mAP_50, bbox_mAP_75, bbox_mAP_s, bbox_mAP_m, bbox_mAP_l
(at the largest ``max_dets``) and AR@{m} for each ``max_dets`` plus ARs/ARm/ARl at the largest.
``iscrowd`` annotations are ignored regions that a detection may match any number of times.
"""
from typing import Dict, Optional, Sequence

import numpy as np

from llmvision.registry import METRICS

from .box_ap import BoxDetections, evaluate_boxes
from .box_metric_base import BoxAPMetricBase

_AP_NAMES = {'AP': 'bbox_mAP', 'AP50': 'bbox_mAP_50', 'AP75': 'bbox_mAP_75', 'APs': 'bbox_mAP_s',
             'APm': 'bbox_mAP_m', 'APl': 'bbox_mAP_l'}


@METRICS.register_module()
class CocoMetric(BoxAPMetricBase):
    """COCO box AP over a COCO-format ``ann_file``; ``labels`` index its sorted category ids.

    Args:
        max_dets: per (image, category) caps, as pycocotools' ``params.maxDets`` (default 1, 10, 100).
    """
    protocol = 'coco'
    default_prefix = 'coco'

    def __init__(self, ann_file: str, max_dets: Sequence[int] = (1, 10, 100), **kwargs) -> None:
        super().__init__(ann_file, **kwargs)
        self.max_dets = tuple(sorted(int(m) for m in max_dets))

    def _evaluate(self, dt: BoxDetections, img_subset: Optional[np.ndarray]) -> Dict[str, float]:
        stats = evaluate_boxes(self.gt, dt, 'coco', max_dets=self.max_dets, img_subset=img_subset).stats
        return {_AP_NAMES.get(k, k): v for k, v in stats.items()}
