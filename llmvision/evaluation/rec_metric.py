"""REC accuracy in the MMEngine test loop (LLM-wrapper's metric, REFERENCE.md section 9).

Accuracy = share of expressions whose chosen (top-scored) box has IoU > ``iou_thr`` (strict, as
released; ``iou_mode='>='`` for the MDETR convention) with the ground-truth box, and mean IoU of
the chosen box (0 for an expression without any box: zero candidates count as a miss). Samples
carry the same fields as for :class:`RefExpMetric` (pixel xyxy in the original image).
"""
from typing import Dict, List, Optional

import numpy as np

from llmvision.registry import METRICS

from .refexp_metric import RefExpMetric


@METRICS.register_module()
class RECAccuracyMetric(RefExpMetric):
    """``{split}/accuracy`` and ``{split}/mean_iou`` of the top-1 box (``all/...`` for several splits).

    Args:
        iou_thr: IoU threshold (0.5). iou_mode: ``'>'`` (released) or ``'>='``.
        split: split name for samples without metainfo ``split``.
    """
    default_prefix = 'rec'

    def __init__(self, iou_thr: float = 0.5, iou_mode: str = '>', split: str = 'val',
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(topk=(1,), iou_thr=iou_thr, iou_mode=iou_mode, split=split,
                         collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        out: Dict[str, float] = {}
        for split, iou_list in self.group_by_split(results).items():
            out[f'{split}/accuracy'] = float(np.mean([self._hits(i, 1, self.iou_mode) for i in iou_list]))
            out[f'{split}/mean_iou'] = float(np.mean([float(i[0]) if len(i) else 0.0 for i in iou_list]))
        return out
