"""Datasets run their pipeline on a private random stream (reproducible, independent of the model's draws)."""
import random

import numpy as np
import torch

from helpers import grounding_record, write_image, write_jsonl
from llmvision.datasets import ODVGDataset
from llmvision.datasets.transforms import (
    LoadAnnotations,
    LoadImageFromFile,
    PackDetInputs,
    RandomChoiceResize,
    RandomFlip,
)


def _dataset(tmp_path, **kw):
    write_image(tmp_path / 'img' / 'a.png', 40, 60, [(2, 2, 20, 30)])
    ann = write_jsonl(tmp_path / 'a.jsonl', [grounding_record('a.png', 40, 60, 'the left box.',
                                                               [([2, 2, 20, 30], 'box', [[9, 12]])])])
    pipeline = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=RandomFlip, prob=0.5),
                dict(type=RandomChoiceResize, short_side_range=(20, 80), max_long_side=200), dict(type=PackDetInputs)]
    return ODVGDataset(ann_file=ann, data_prefix=dict(img=str(tmp_path / 'img')), pipeline=pipeline, **kw)


def _draws(ds, n=12):
    out = []
    for _ in range(n):
        s = ds[0]['data_samples']
        out.append((s.flip, s.img_shape, tuple(s.gt_instances.bboxes[0].tolist())))
    return out


def test_same_seed_same_samples_whatever_the_model_draws(tmp_path):
    torch.manual_seed(123)
    a = _dataset(tmp_path)
    first = []
    for _ in range(12):
        random.random(), np.random.rand(), torch.rand(1)  # "model" draws between samples
        first.append(_draws(a, 1)[0])
    torch.manual_seed(123)
    b = _dataset(tmp_path)
    assert _draws(b) == first
    assert len({d[1] for d in first}) > 2 and {d[0] for d in first} == {True, False}


def test_global_stream_untouched(tmp_path):
    ds = _dataset(tmp_path)
    random.seed(5)
    expected = [random.random() for _ in range(3)]
    random.seed(5)
    _draws(ds, 3)
    assert [random.random() for _ in range(3)] == expected
    random.seed(5)
    plain = _dataset(tmp_path, private_rng=False)
    _draws(plain, 3)
    assert [random.random() for _ in range(3)] != expected
