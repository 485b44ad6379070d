"""Keypoint OKS AP (COCO keypoints protocol through pycocotools) for REF-VLM keypoint answers.

Ground truth: a COCO keypoint json (``annotations[].keypoints`` ``[x, y, v] * K``, ``area``, ``bbox``; one
category with ``keypoints`` names). Predictions per sample: metainfo ``img_id`` and ``pred_instances`` with
``keypoints [N, K, 3]`` (pixel x, y, visibility score) and ``scores [N]``. ``sigmas`` (per keypoint, or one
float) replace pycocotools' 17 COCO-person sigmas.
Reports ``AP``, ``AP50``, ``AP75``, ``AR`` (pycocotools' ``stats[0, 1, 2, 5]``) under prefix ``keypoints``.
"""
import contextlib
import io
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
from mmengine.evaluator import BaseMetric

from llmvision.registry import METRICS

from .predictions import get_field, to_numpy


@METRICS.register_module()
class KeypointOKSMetric(BaseMetric):
    """OKS AP over a COCO keypoint ``ann_file`` (module docstring).

    Args:
        ann_file: COCO keypoint json.
        sigmas: OKS sigma per keypoint (a float for all).
        category_id: category of every prediction (default: the file's first category).
    """
    default_prefix = 'keypoints'

    def __init__(self, ann_file: str, sigmas: Union[float, Sequence[float]] = 0.05,
                 category_id: Optional[int] = None, collect_device: str = 'cpu', prefix: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix)
        self.ann_file, self.sigmas, self.category_id = ann_file, sigmas, category_id

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            img_id = get_field(s, 'img_id')
            if img_id is None:
                raise ValueError('KeypointOKSMetric: a data sample has no metainfo img_id')
            inst = get_field(s, 'pred_instances')
            kps = get_field(inst, 'keypoints') if inst is not None else None
            kps = np.zeros((0, 0, 3)) if kps is None else to_numpy(kps).astype(np.float64)
            scores = to_numpy(get_field(inst, 'scores', np.ones(len(kps)))).astype(np.float64).reshape(-1)
            if len(scores) != len(kps):
                scores = np.ones(len(kps))
            self.results.append({'img_id': int(img_id), 'keypoints': kps, 'scores': scores})

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval
        with contextlib.redirect_stdout(io.StringIO()):
            gt = COCO(self.ann_file)
        cat = self.category_id if self.category_id is not None else sorted(gt.getCatIds())[0]
        k = len(gt.loadCats(cat)[0].get('keypoints', [])) or None
        dts, seen = [], set()
        for r in results:
            if r['img_id'] in seen:
                continue
            seen.add(r['img_id'])
            for kp, sc in zip(r['keypoints'], r['scores']):
                k = k or kp.shape[0]
                kp = kp[:k]
                if kp.shape[0] < k:
                    kp = np.concatenate([kp, np.zeros((k - kp.shape[0], 3))])
                xs, ys = kp[:, 0], kp[:, 1]
                box = [float(xs.min()), float(ys.min()), float(np.ptp(xs)), float(np.ptp(ys))]
                flat = np.concatenate([kp[:, :2], np.ones((k, 1))], 1).reshape(-1)
                dts.append({'image_id': r['img_id'], 'category_id': cat, 'keypoints': flat.tolist(),
                            'score': float(sc), 'bbox': box, 'area': box[2] * box[3]})
        if not dts:
            return {'AP': 0.0, 'AP50': 0.0, 'AP75': 0.0, 'AR': 0.0}
        sig = np.full(k, float(self.sigmas)) if isinstance(self.sigmas, (int, float)) else np.asarray(self.sigmas)
        with contextlib.redirect_stdout(io.StringIO()):
            dt = gt.loadRes(dts)
            ev = COCOeval(gt, dt, iouType='keypoints')
            ev.params.kpt_oks_sigmas = sig
            ev.params.imgIds = sorted(seen)
            ev.evaluate()
            ev.accumulate()
            ev.summarize()
        return {'AP': float(ev.stats[0]), 'AP50': float(ev.stats[1]), 'AP75': float(ev.stats[2]),
                'AR': float(ev.stats[5])}
