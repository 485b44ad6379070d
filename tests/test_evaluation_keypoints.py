"""KeypointOKSMetric: perfect keypoints give AP 1, noisy ones less, wrong image ids 0; duplicates dropped."""
import json

import numpy as np
import pytest
import torch
from mmengine.structures import InstanceData

from llmvision.evaluation.keypoint_metric import KeypointOKSMetric
from llmvision.structures.lmm_sample import LMMDataSample

K = 4


@pytest.fixture()
def ann_file(tmp_path):
    rng = np.random.default_rng(0)
    images, anns = [], []
    for i in range(1, 6):
        images.append({'id': i, 'file_name': f'{i}.png', 'height': 100, 'width': 100})
        kp = np.concatenate([rng.uniform(20, 80, (K, 2)), np.array([[2], [2], [1], [0]])], 1)
        anns.append({'id': i, 'image_id': i, 'category_id': 1, 'bbox': [20, 20, 60, 60], 'area': 3600.0,
                     'iscrowd': 0, 'keypoints': kp.reshape(-1).tolist(), 'num_keypoints': 3})
    path = tmp_path / 'kpt.json'
    path.write_text(json.dumps({'images': images, 'annotations': anns, 'categories': [
        {'id': 1, 'name': 'shape', 'keypoints': [f'v{i}' for i in range(K)], 'skeleton': []}]}))
    return str(path), anns


def _samples(anns, noise=0.0, img_offset=0):
    out = []
    for a in anns:
        kp = torch.tensor(a['keypoints'], dtype=torch.float32).view(K, 3).clone()
        kp[:, :2] += noise
        s = LMMDataSample(metainfo=dict(img_id=a['image_id'] + img_offset))
        s.pred_instances = InstanceData(keypoints=kp[None], scores=torch.ones(1), bboxes=torch.zeros(1, 4))
        out.append(s)
    return out


def _run(path, samples):
    m = KeypointOKSMetric(path, sigmas=0.05)
    m.process(None, samples + samples[:1])  # a padded duplicate
    return m.compute_metrics(m.results)


def test_oks_ap(ann_file):
    path, anns = ann_file
    assert _run(path, _samples(anns))['AP'] == pytest.approx(1.0)
    noisy = _run(path, _samples(anns, noise=6.0))['AP']
    assert 0 <= noisy < 1.0
    assert _run(path, _samples(anns[:2], img_offset=2))['AP'] < 0.5
