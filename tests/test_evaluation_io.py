"""Result dumping (atomic json, round trip) and clear errors on bad predictions."""
import json
import os

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import to_samples
from llmvision.evaluation import LVISFixedAPMetric, build_ground_truth, results2json, results_to_detections
from llmvision.evaluation.synthetic import make_detection_set
from llmvision.structures.data_sample import DetDataSample


@pytest.fixture
def lvis_set(tmp_path):
    ds, dets = make_detection_set(10, 8, seed=11, protocol='lvis', cat_id_stride=5)
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps(ds))
    return ds, dets, str(ann)


def test_dump_round_trip_equals_direct(tmp_path, lvis_set):
    ds, dets, ann = lvis_set
    prefix = str(tmp_path / 'out' / 'preds')
    metric = LVISFixedAPMetric(ann, outfile_prefix=prefix)
    metric.process(None, to_samples(ds, dets))
    direct = metric.evaluate(len(ds['images']))
    dumped = json.loads(open(prefix + '.bbox.json').read())
    assert len(dumped) == len(dets)
    assert set(dumped[0]) == {'image_id', 'category_id', 'bbox', 'score'}
    assert {d['category_id'] for d in dumped} <= {c['id'] for c in ds['categories']}
    assert not [f for f in os.listdir(tmp_path / 'out') if f.startswith('.tmp')]
    offline = LVISFixedAPMetric(ann).evaluate_file(prefix + '.bbox.json')
    for k, v in offline.items():
        assert direct[f'lvis_fixed_ap/{k}'] == pytest.approx(v, abs=1e-12)


def test_results2json_is_atomic(tmp_path):
    out = tmp_path / 'r.json'
    out.write_text('old')

    class Boom:
        pass
    with pytest.raises(TypeError):
        results2json([{'x': Boom()}], str(out))
    assert out.read_text() == 'old'  # the failed write left the previous file intact
    assert os.listdir(tmp_path) == ['r.json']


@pytest.mark.parametrize('mutate,match', [
    (lambda r: r.update(image_id=999999), 'entry 2: image_id 999999'),
    (lambda r: r.update(category_id=4), 'entry 2: category_id 4'),
    (lambda r: r.update(score=float('nan')), 'prediction 2 has a non-finite score'),
    (lambda r: r.update(bbox=[1.0, 1.0, -3.0, 2.0]), 'prediction 2 has a box of negative size'),
    (lambda r: r.pop('score'), "entry 2: missing key 'score'"),
])
def test_bad_result_file_entries(tmp_path, lvis_set, mutate, match):
    ds, dets, ann = lvis_set
    bad = [dict(d) for d in dets]
    mutate(bad[2])
    path = tmp_path / 'bad.json'
    path.write_text(json.dumps(bad))
    with pytest.raises(ValueError, match=match) as e:
        LVISFixedAPMetric(ann).evaluate_file(str(path))
    assert str(path) in str(e.value) or 'prediction' in str(e.value)


def test_bad_samples(lvis_set):
    ds, dets, ann = lvis_set
    gt = build_ground_truth(ann, 'lvis')
    assert len(results_to_detections(dets, gt).scores) == len(dets)
    s = DetDataSample(metainfo=dict(img_id=ds['images'][0]['id']))
    p = InstanceData()
    p.bboxes = torch.tensor([[0., 0., 5., 5.]])
    p.scores = torch.tensor([0.5])
    p.labels = torch.tensor([8])  # 8 categories: labels 0..7
    s.pred_instances = p
    metric = LVISFixedAPMetric(ann)
    metric.process(None, [s])
    with pytest.raises(ValueError, match='label 8 outside the 8 categories'):
        metric.evaluate(1)
    s.set_metainfo(dict(img_id=123456789))
    p.labels = torch.tensor([0])
    metric = LVISFixedAPMetric(ann)
    metric.process(None, [s])
    with pytest.raises(ValueError, match='image id 123456789 is not in the annotation file'):
        metric.evaluate(1)
    with pytest.raises(FileNotFoundError, match='annotation file not found'):
        LVISFixedAPMetric('/nonexistent/lvis.json').evaluate_file('/nonexistent/r.json')
    assert np.isfinite(gt.areas).all()
