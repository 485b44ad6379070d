"""RECAccuracyMetric: LLM-wrapper's accuracy (IoU > 0.5, strict) and mean IoU in the test loop."""
import pytest
import torch
from mmengine.structures import InstanceData

from llmvision.evaluation import RECAccuracyMetric, rec_accuracy
from llmvision.structures import DetDataSample


def _sample(idx, boxes, gt, split='val', scores=None):
    s = DetDataSample(metainfo=dict(sample_idx=idx, gt_bbox=gt, split=split))
    boxes = torch.tensor(boxes, dtype=torch.float32).reshape(-1, 4)
    s.pred_instances = InstanceData(bboxes=boxes, labels=torch.zeros(len(boxes), dtype=torch.long),
                                    scores=torch.ones(len(boxes)) if scores is None else torch.tensor(scores))
    return s


def test_accuracy_strict_threshold_mean_iou_and_splits():
    gt = [0.0, 0.0, 10.0, 10.0]
    samples = [
        _sample(0, [[0, 0, 10, 10]], gt),            # IoU 1
        _sample(1, [[0, 0, 10, 5]], gt),             # IoU 0.5 exactly: a miss with '>' (released)
        _sample(2, [], gt),                          # no candidate: miss, IoU 0
        _sample(3, [[5, 0, 15, 10], [0, 0, 10, 10]], gt, 'testA', [0.9, 0.1]),  # top-1 by score: IoU 1/3
        _sample(3, [[5, 0, 15, 10], [0, 0, 10, 10]], gt, 'testA', [0.9, 0.1]),  # padded duplicate
    ]
    metric = RECAccuracyMetric()
    metric.process({}, samples)
    out = metric.compute_metrics(metric.results)
    assert out['val/accuracy'] == pytest.approx(1 / 3)
    assert out['val/mean_iou'] == pytest.approx((1 + 0.5 + 0) / 3)
    assert out['testA/accuracy'] == 0 and out['testA/mean_iou'] == pytest.approx(1 / 3)
    assert out['all/accuracy'] == pytest.approx(1 / 4)
    # the same numbers as the selector table's rec_accuracy on the chosen boxes
    chosen = [torch.tensor([0., 0, 10, 10]), torch.tensor([0., 0, 10, 5]), None, torch.tensor([5., 0, 15, 10])]
    assert rec_accuracy(chosen, [gt] * 4)['accuracy'] == pytest.approx(out['all/accuracy'])
    inclusive = RECAccuracyMetric(iou_mode='>=')
    inclusive.process({}, samples[:3])
    assert inclusive.compute_metrics(inclusive.results)['val/accuracy'] == pytest.approx(2 / 3)
