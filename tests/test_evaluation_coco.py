"""COCO box AP parity with pycocotools (crowd boxes, binding max_dets) and the multi-dataset wrapper."""
import contextlib
import copy
import io
import json

import numpy as np
import pytest
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from helpers import to_samples
from llmvision.evaluation import CocoMetric, MultiDatasetMetric, build_ground_truth, evaluate_boxes
from llmvision.evaluation.predictions import results_to_detections
from llmvision.evaluation.synthetic import make_detection_set


def coco_reference(dataset, results, max_dets=(1, 10, 100)):
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = copy.deepcopy(dataset)
        gt.createIndex()
        ev = COCOeval(gt, gt.loadRes(copy.deepcopy(results)), 'bbox')
        ev.params.maxDets = list(max_dets)
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


@pytest.mark.parametrize('seed,max_dets', [(0, (1, 10, 100)), (1, (1, 2, 4)), (2, (1, 3, 5))])
def test_coco_ap_matches_pycocotools(seed, max_dets):
    ds, dets = make_detection_set(50, 30, seed=seed, protocol='coco', cat_id_stride=3, fp_per_image=12)
    assert any(a['iscrowd'] for a in ds['annotations'])
    ref = coco_reference(ds, dets, max_dets)
    gt = build_ground_truth(ds, 'coco')
    ours = evaluate_boxes(gt, results_to_detections(dets, gt), 'coco', max_dets=max_dets)
    np.testing.assert_allclose(ours.precision, ref.eval['precision'], atol=1e-12)
    np.testing.assert_allclose(ours.recall, ref.eval['recall'], atol=1e-12)
    stats = list(ours.stats.values())
    # pycocotools' summarize() looks AP up at maxDets=100 only (-1 otherwise): compare that one directly
    np.testing.assert_allclose(stats[1:], ref.stats[1:], atol=1e-4)
    p = ref.eval['precision'][:, :, :, 0, -1]
    assert stats[0] == pytest.approx(np.mean(p[p > -1]), abs=1e-4)
    if max_dets == (1, 10, 100):
        assert stats[0] == pytest.approx(ref.stats[0], abs=1e-4)


def test_coco_metric_and_multi_dataset(tmp_path):
    sets = {}
    for name, seed in (('aquarium', 3), ('pothole', 4)):
        ds, dets = make_detection_set(20, 6, seed=seed, protocol='coco')
        (tmp_path / f'{name}.json').write_text(json.dumps(ds))
        sets[name] = (ds, dets, coco_reference(ds, dets).stats)

    single = CocoMetric(str(tmp_path / 'aquarium.json'))
    single.process(None, to_samples(*sets['aquarium'][:2]))
    got = single.evaluate(20)
    assert got['coco/bbox_mAP'] == pytest.approx(sets['aquarium'][2][0], abs=1e-4)
    assert got['coco/bbox_mAP_50'] == pytest.approx(sets['aquarium'][2][1], abs=1e-4)
    assert got['coco/AR@100'] == pytest.approx(sets['aquarium'][2][8], abs=1e-4)

    multi = MultiDatasetMetric([dict(type='CocoMetric', ann_file=str(tmp_path / f'{n}.json')) for n in sets],
                               dataset_prefixes=list(sets))
    batch = []
    for name, (ds, dets, _) in sets.items():
        for s in to_samples(ds, dets):
            s.set_metainfo(dict(dataset_name=name))
            batch.append(s)
    multi.process(None, batch[::-1])
    got = multi.evaluate(len(batch))
    for name, (_, _, ref) in sets.items():
        assert got[f'multi/{name}/bbox_mAP'] == pytest.approx(ref[0], abs=1e-4)
    assert got['multi/mean/bbox_mAP'] == pytest.approx(np.mean([v[2][0] for v in sets.values()]), abs=1e-4)

    bad = batch[0]
    bad.set_metainfo(dict(dataset_name='unknown'))
    with pytest.raises(ValueError, match='dataset_name'):
        multi.process(None, [bad])
