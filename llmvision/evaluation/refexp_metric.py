"""Referring-expression precision@k (RefCOCO/+/g): is any of the top-k boxes within IoU of the gt box?

What a sample must carry (first match wins), all pixel xyxy:
  1. metainfo ``ori_gt_bboxes`` ``[1, 4]`` or ``[4]``: the gt box in the ORIGINAL image;
  2. metainfo ``gt_bbox`` ``[4]``: the same (the refer/MDETR datasets' field name);
  3. ``gt_instances.bboxes`` ``[1, 4]`` in the RESIZED image (``img_shape``), divided back by metainfo
     ``scale_factor`` ``(w_scale, h_scale)`` (identity if absent).
Predictions: ``pred_instances.bboxes [K, 4]`` in the original image, ``.scores [K]`` (sorted here by
score, descending, stable). Split: metainfo ``split`` (e.g. 'val', 'testA'), else the metric's ``split``.
Padded duplicates are dropped by metainfo ``sample_idx`` when present, else by (img_id, text, gt box).
"""
from collections import OrderedDict
from typing import Dict, List, Optional, Sequence

import numpy as np
import torch
from mmengine.evaluator import BaseMetric

from llmvision.registry import METRICS
from llmvision.structures.boxes import box_iou

from .predictions import check_boxes_scores, get_field, to_numpy


def _gt_box_original(sample) -> np.ndarray:
    for key in ('ori_gt_bboxes', 'gt_bbox'):
        v = get_field(sample, key)
        if v is not None:
            return to_numpy(v).astype(np.float64).reshape(-1, 4)[:1]
    gt = get_field(sample, 'gt_instances')
    if gt is None or get_field(gt, 'bboxes') is None:
        raise ValueError(f'image {get_field(sample, "img_id")}: no gt box (metainfo ori_gt_bboxes / gt_bbox or '
                         'gt_instances.bboxes)')
    box = to_numpy(get_field(gt, 'bboxes')).astype(np.float64).reshape(-1, 4)[:1]
    sf = get_field(sample, 'scale_factor')
    if sf is not None:
        w_s, h_s = float(sf[0]), float(sf[1])
        box = box / np.array([w_s, h_s, w_s, h_s])
    return box


@METRICS.register_module()
class RefExpMetric(BaseMetric):
    """Precision@k per split at an IoU threshold.

    Args:
        topk: the k values. iou_thr: IoU threshold. iou_mode: ``'>='`` (MDETR/mmdet) or ``'>'``.
        report_both: also report ``P@k_iou>=thr`` and ``P@k_iou>thr`` next to the ``iou_mode`` keys.
        split: split name for samples without metainfo ``split``.
    Output keys: ``{split}/P@{k}`` (and the two suffixed variants), plus ``all/...`` for several splits.
    """
    default_prefix = 'refexp'

    def __init__(self, topk: Sequence[int] = (1, 5, 10), iou_thr: float = 0.5, iou_mode: str = '>=',
                 report_both: bool = False, split: str = 'val', collect_device: str = 'cpu',
                 prefix: Optional[str] = None, collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if iou_mode not in ('>=', '>'):
            raise ValueError(f"iou_mode must be '>=' or '>', got {iou_mode!r}")
        self.topk = tuple(int(k) for k in topk)
        self.iou_thr = float(iou_thr)
        self.iou_mode = iou_mode
        self.report_both = report_both
        self.split = split

    def process(self, data_batch, data_samples: Sequence) -> None:
        kmax = max(self.topk)
        for s in data_samples:
            pred = get_field(s, 'pred_instances')
            img_id = get_field(s, 'img_id')
            if pred is None:
                raise ValueError(f'image {img_id}: data sample has no pred_instances')
            boxes = to_numpy(get_field(pred, 'bboxes', np.zeros((0, 4)))).astype(np.float64).reshape(-1, 4)
            scores = to_numpy(get_field(pred, 'scores', np.zeros(len(boxes)))).astype(np.float64).reshape(-1)
            check_boxes_scores(boxes, scores, f'image {img_id}', xyxy=True)
            order = np.argsort(-scores, kind='stable')[:kmax]
            gt = _gt_box_original(s)
            ious = box_iou(torch.from_numpy(boxes[order]), torch.from_numpy(gt))[:, 0].numpy() \
                if len(order) else np.zeros(0)
            sample_idx = get_field(s, 'sample_idx')
            key = ('idx', int(sample_idx)) if sample_idx is not None else \
                ('img', img_id, str(get_field(s, 'text')), tuple(np.round(gt[0], 3).tolist()))
            self.results.append({'key': key, 'split': get_field(s, 'split') or self.split, 'ious': ious})

    def _hits(self, ious: np.ndarray, k: int, mode: str) -> bool:
        top = ious[:k]
        return bool((top >= self.iou_thr).any() if mode == '>=' else (top > self.iou_thr).any())

    @staticmethod
    def group_by_split(results: List[dict]) -> 'OrderedDict[str, List[np.ndarray]]':
        """Per split the IoU arrays of the unique samples (padded duplicates dropped), plus ``all``
        when there are several splits."""
        seen, by_split = set(), OrderedDict()
        for r in results:
            if r['key'] in seen:
                continue
            seen.add(r['key'])
            by_split.setdefault(r['split'], []).append(r['ious'])
        if len(by_split) > 1:
            by_split['all'] = [i for v in list(by_split.values()) for i in v]
        return by_split

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        thr = f'{self.iou_thr:g}'
        out: Dict[str, float] = {}
        for split, iou_list in self.group_by_split(results).items():
            for k in self.topk:
                out[f'{split}/P@{k}'] = float(np.mean([self._hits(i, k, self.iou_mode) for i in iou_list]))
                if self.report_both:
                    for mode in ('>=', '>'):
                        out[f'{split}/P@{k}_iou{mode}{thr}'] = float(
                            np.mean([self._hits(i, k, mode) for i in iou_list]))
        return out
