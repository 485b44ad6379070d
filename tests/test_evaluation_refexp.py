"""RefExp precision@k against a direct computation; gt forms, both IoU conventions, dedupe, splits."""
import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from llmvision.evaluation import RefExpMetric
from llmvision.structures.data_sample import DetDataSample


def iou_xyxy(a, b):
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    return inter / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter)


def make_sample(idx, gt, boxes, scores, split, form, scale=(0.5, 0.8)):
    s = DetDataSample(metainfo=dict(img_id=idx // 2, sample_idx=idx, split=split, text=f'thing {idx}'))
    gt_t = torch.tensor([gt], dtype=torch.float64)
    if form == 'ori':
        s.set_metainfo(dict(ori_gt_bboxes=gt_t))
    else:  # gt in the resized image + scale_factor (w, h)
        g = InstanceData()
        g.bboxes = gt_t * torch.tensor([scale[0], scale[1], scale[0], scale[1]], dtype=torch.float64)
        g.labels = torch.zeros(1, dtype=torch.long)
        s.gt_instances = g
        s.set_metainfo(dict(scale_factor=scale))
    p = InstanceData()
    p.bboxes = torch.tensor(boxes, dtype=torch.float64).reshape(-1, 4)
    p.scores = torch.tensor(scores, dtype=torch.float64)
    p.labels = torch.zeros(len(scores), dtype=torch.long)
    s.pred_instances = p
    return s


def test_precision_at_k_matches_direct_computation():
    rng = np.random.default_rng(0)
    samples, direct = [], {}
    for i in range(60):
        x, y = rng.uniform(0, 200, 2)
        gt = [x, y, x + rng.uniform(20, 80), y + rng.uniform(20, 80)]
        n = int(rng.integers(0, 14))
        boxes = [[gt[0] + dx, gt[1] + dy, gt[2] + dx, gt[3] + dy] for dx, dy in rng.normal(0, 25, (n, 2))]
        scores = rng.random(n).tolist()
        split = ('val', 'testA')[i % 2]
        samples.append(make_sample(i, gt, boxes, scores, split, ('ori', 'resized')[i % 3 == 0]))
        ranked = [boxes[j] for j in np.argsort(-np.asarray(scores), kind='stable')]
        for k in (1, 5, 10):
            hit = any(iou_xyxy(b, gt) >= 0.5 for b in ranked[:k])
            direct.setdefault((split, k), []).append(hit)
    metric = RefExpMetric(topk=(1, 5, 10))
    metric.process(None, samples[:30])
    metric.process(None, [s.to_dict() for s in samples[30:]] + samples[:5])  # padded duplicates
    got = metric.evaluate(65)
    for (split, k), hits in direct.items():
        assert got[f'refexp/{split}/P@{k}'] == pytest.approx(np.mean(hits)), (split, k)
    all_hits = direct[('val', 1)] + direct[('testA', 1)]
    assert got['refexp/all/P@1'] == pytest.approx(np.mean(all_hits))
    assert 0 < got['refexp/all/P@1'] < got['refexp/all/P@10'] < 1


def test_iou_conventions_at_exact_threshold():
    gt = [0.0, 0.0, 10.0, 10.0]
    half = [0.0, 0.0, 10.0, 5.0]  # IoU exactly 0.5
    assert iou_xyxy(half, gt) == 0.5
    metric = RefExpMetric(topk=(1,), report_both=True)
    metric.process(None, [make_sample(0, gt, [half], [0.9], 'val', 'ori')])
    got = metric.evaluate(1)
    assert got['refexp/val/P@1'] == 1.0
    assert got['refexp/val/P@1_iou>=0.5'] == 1.0
    assert got['refexp/val/P@1_iou>0.5'] == 0.0
    strict = RefExpMetric(topk=(1,), iou_mode='>')
    strict.process(None, [make_sample(0, gt, [half], [0.9], 'val', 'resized')])
    assert strict.evaluate(1)['refexp/val/P@1'] == 0.0


def test_bad_input_is_reported():
    with pytest.raises(ValueError, match='iou_mode'):
        RefExpMetric(iou_mode='>>')
    metric = RefExpMetric()
    with pytest.raises(ValueError, match='non-finite score'):
        metric.process(None, [make_sample(3, [0, 0, 5, 5], [[0, 0, 4, 4]], [float('nan')], 'val', 'ori')])
    with pytest.raises(ValueError, match='negative size'):
        metric.process(None, [make_sample(3, [0, 0, 5, 5], [[4, 0, 0, 4]], [0.3], 'val', 'ori')])
