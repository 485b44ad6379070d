"""LVIS fixed AP / standard AP: parity with lvis-api 0.5.3 (the reference of record), dedupe, edge cases."""
import copy
import json
from collections import defaultdict

import numpy as np
import pytest

from helpers import to_samples
from llmvision.evaluation import LVISFixedAPMetric, LVISMetric, build_ground_truth, evaluate_boxes
from llmvision.evaluation.predictions import results_to_detections, top_k_per_category
from llmvision.evaluation.synthetic import make_detection_set

KEYS = ['AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf']


@pytest.fixture
def lvis_api(monkeypatch):
    """lvis-api uses ``np.float`` (removed in numpy 1.24): shim it for the test only."""
    monkeypatch.setattr(np, 'float', float, raising=False)
    import lvis
    return lvis


def lvis_reference(lvis, ann_file, results, max_dets_per_image=-1, max_dets_per_cat=None):
    """lvis-api with the fixed-AP protocol applied to its input (Dave et al.'s script)."""
    if max_dets_per_cat is not None:
        by_cat = defaultdict(list)
        for r in results:
            by_cat[r['category_id']].append(r)
        results = [r for anns in by_cat.values()
                   for r in sorted(anns, key=lambda a: a['score'], reverse=True)[:max_dets_per_cat]]
    gt = lvis.LVIS(ann_file)
    dt = lvis.LVISResults(gt, copy.deepcopy(results), max_dets=max_dets_per_image)
    ev = lvis.LVISEval(gt, dt, 'bbox')
    ev.params.max_dets = max_dets_per_image
    ev.run()
    return ev


@pytest.mark.parametrize('seed', [0, 1, 2])
def test_fixed_ap_matches_lvis_api(tmp_path, lvis_api, seed):
    ds, dets = make_detection_set(50, 30, seed=seed, protocol='lvis', cat_id_stride=2)
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps(ds))
    k = 12  # small enough that the per-category cap really drops detections
    counts = np.bincount([d['category_id'] for d in dets])
    assert (counts > k).any()
    ref = lvis_reference(lvis_api, str(ann), dets, max_dets_per_cat=k)

    gt = build_ground_truth(str(ann), 'lvis')
    ours = evaluate_boxes(gt, top_k_per_category(results_to_detections(dets, gt), k), 'lvis')
    np.testing.assert_allclose(ours.precision[..., 0], ref.eval['precision'], atol=1e-12)
    np.testing.assert_allclose(ours.recall[..., 0], ref.eval['recall'], atol=1e-12)
    for key in KEYS + ['ARs', 'ARm', 'ARl']:
        ref_key = key if not key.startswith('AR') else f'AR{key[2:]}@-1'
        assert ours.stats[key] == pytest.approx(ref.results[ref_key], abs=1e-4), key
    assert ours.stats['AR'] == pytest.approx(ref.results['AR@-1'], abs=1e-4)

    # the metric, fed DetDataSamples in a shuffled order, gives the same numbers
    metric = LVISFixedAPMetric(str(ann), max_dets_per_cat=k)
    samples = to_samples(ds, dets)
    metric.process(None, samples[::2])
    metric.process(None, [s.to_dict() for s in samples[1::2]])  # the dict form is accepted too
    got = metric.evaluate(len(samples))
    for key in KEYS:
        assert got[f'lvis_fixed_ap/{key}'] == pytest.approx(ref.results[key], abs=1e-4), key


def test_standard_lvis_metric_per_image_cap(tmp_path, lvis_api):
    ds, dets = make_detection_set(40, 25, seed=5, protocol='lvis', fp_per_image=10)
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps(ds))
    ref = lvis_reference(lvis_api, str(ann), dets, max_dets_per_image=6)  # the cap binds on most images
    metric = LVISMetric(str(ann), max_dets_per_image=6)
    metric.process(None, to_samples(ds, dets))
    got = metric.evaluate(len(ds['images']))
    for key in KEYS:
        assert got[f'lvis/{key}'] == pytest.approx(ref.results[key], abs=1e-4), key
    # and the offline path over a result file
    res = tmp_path / 'res.json'
    res.write_text(json.dumps(dets))
    off = LVISMetric(str(ann), max_dets_per_image=6).evaluate_file(str(res))
    for key in KEYS:
        assert off[key] == pytest.approx(ref.results[key], abs=1e-4), key


def test_distributed_padding_is_not_double_counted(tmp_path):
    ds, dets = make_detection_set(20, 10, seed=3, protocol='lvis')
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps(ds))
    samples = to_samples(ds, dets)
    clean = LVISFixedAPMetric(str(ann))
    clean.process(None, samples)
    expected = clean.evaluate(len(samples))
    # what collect_results hands over when the sampler padded 2 ranks: interleaved + repeated samples
    padded = LVISFixedAPMetric(str(ann))
    padded.process(None, samples + samples[:3])
    got = padded.evaluate(len(samples) + 3)
    assert got == expected
    # a duplicated image with its detections counted twice would change AP: guard the test itself
    busiest = np.bincount([d['image_id'] for d in dets]).argmax()
    gt = build_ground_truth(ds, 'lvis')
    dup = evaluate_boxes(gt, results_to_detections(dets + [d for d in dets if d['image_id'] == busiest], gt),
                         'lvis').stats['AP']
    assert dup != pytest.approx(expected['lvis_fixed_ap/AP'], abs=1e-6)


def test_empty_predictions_and_subset(tmp_path, lvis_api):
    ds, dets = make_detection_set(30, 12, seed=7, protocol='lvis')
    ann = tmp_path / 'lvis.json'
    ann.write_text(json.dumps(ds))
    metric = LVISFixedAPMetric(str(ann))
    metric.process(None, to_samples(ds, []))
    got = metric.evaluate(len(ds['images']))
    assert got['lvis_fixed_ap/AP'] == 0.0
    # evaluating a subset of images equals lvis-api restricted to the same image ids
    keep = [im['id'] for im in ds['images'][:12]]
    gt = lvis_api.LVIS(str(ann))
    ev = lvis_api.LVISEval(gt, lvis_api.LVISResults(gt, copy.deepcopy(dets), max_dets=-1), 'bbox')
    ev.params.img_ids = keep
    ev.run()
    sub = LVISMetric(str(ann), max_dets_per_image=None)
    sub.process(None, [s for s in to_samples(ds, dets) if s.img_id in keep])
    got = sub.evaluate(12)
    for key in KEYS:
        assert got[f'lvis/{key}'] == pytest.approx(ev.results[key], abs=1e-4), key
