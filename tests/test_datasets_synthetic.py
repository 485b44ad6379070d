"""Every dataset reads the shared synthetic set (``synthetic_data`` fixture) without a skip, consistently."""
import random

import torch
from lvis import LVIS
from mmengine.dataset import pseudo_collate

from llmvision.datasets import LVISDataset, ODVGDataset, RefCOCODataset
from llmvision.datasets.caption_cleaning import clean_phrase
from llmvision.datasets.transforms import (
    FilterEmptyBoxes,
    LoadAnnotations,
    LoadImageFromFile,
    PackDetInputs,
    RandomChoiceResize,
    RandomFlip,
)
from llmvision.models.data_preprocessors import DetDataPreprocessor

TEST_PIPE = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=PackDetInputs)]


def _img(p):
    return dict(img=str(p.image_dir))


def test_odvg_grounding_and_detection_forms_agree(synthetic_data):
    p = synthetic_data
    g = ODVGDataset(ann_file=str(p.train_odvg), data_prefix=_img(p), pipeline=TEST_PIPE)
    d = ODVGDataset(ann_file=str(p.train_det_odvg), label_map_file=str(p.label_map), data_prefix=_img(p),
                    pipeline=TEST_PIPE)
    assert len(g) == len(d) > 0 and g.num_skipped == d.num_skipped == 0
    assert d.metainfo['classes'] == tuple(p.categories)
    n_long = 0
    for i in range(len(g)):
        gi, di = g.get_data_info(i), d.get_data_info(i)
        assert gi['img_path'] == di['img_path']
        assert sorted(map(tuple, (x['bbox'] for x in gi['instances']))) == \
            sorted(map(tuple, (x['bbox'] for x in di['instances'])))
        for inst in gi['instances']:
            assert 0 <= inst['bbox_label'] < len(gi['tokens_positive'])
        for spans, phrase in zip(gi['tokens_positive'], gi['phrases']):
            assert all(0 <= s < e <= len(gi['text']) for s, e in spans)
            # region phrases are cleaned as LLMDet does ('a red circle' -> 'Red circle.')
            assert any(clean_phrase(gi['text'][s:e]) == phrase for s, e in spans), (phrase, gi['text'])
        n_long += 'long_caption' in gi
    assert n_long == len(g)
    out = g[0]
    assert out['inputs'].shape[0] == 3 and out['data_samples'].long_caption


def test_lvis_and_refcoco(synthetic_data):
    p = synthetic_data
    lv = LVISDataset(ann_file=str(p.lvis_val), data_prefix=_img(p), pipeline=TEST_PIPE, test_mode=True)
    api = LVIS(str(p.lvis_val))
    assert len(lv) == len(api.get_img_ids()) and lv.num_skipped == 0
    assert lv.cat_ids == sorted(api.get_cat_ids())
    n_inst = sum(len(lv.get_data_info(i)['instances']) for i in range(len(lv)))
    assert n_inst == len(api.get_ann_ids())
    assert lv[0]['inputs'].shape[0] == 3
    ref = RefCOCODataset(data_root=str(p.refcoco_root), split='val', data_prefix=_img(p), pipeline=TEST_PIPE,
                         test_mode=True)
    assert len(ref) > 0 and ref.num_skipped == 0
    s = ref[0]['data_samples']
    assert s.gt_instances.bboxes.shape == (1, 4) and s.tokens_positive == [[[0, len(s.text)]]]


def test_training_pipeline_to_preprocessor(synthetic_data):
    p = synthetic_data
    pipe = [dict(type=LoadImageFromFile), dict(type=LoadAnnotations), dict(type=RandomFlip, prob=0.5),
            dict(type=RandomChoiceResize, scales=[96, 128, 160], max_long_side=256),
            dict(type=FilterEmptyBoxes, keep_empty=False), dict(type=PackDetInputs)]
    ds = ODVGDataset(ann_file=str(p.train_odvg), data_prefix=_img(p), pipeline=pipe,
                     filter_cfg=dict(filter_empty_gt=True))
    assert 0 < len(ds) and ds.num_filtered_empty > 0  # the generator always makes an empty image
    random.seed(0)
    batch = DetDataPreprocessor(pad_size_divisor=32)(pseudo_collate([ds[i] for i in range(4)]), training=True)
    x = batch['inputs']
    assert x.shape[0] == 4 and x.shape[2] % 32 == 0 and x.shape[3] % 32 == 0
    for s in batch['data_samples']:
        h, w = s.img_shape
        b = s.gt_instances.bboxes
        assert len(b) > 0 and (b[:, 2] <= w).all() and (b[:, 3] <= h).all() and (b >= 0).all()
        assert min(h, w) in (96, 128, 160) or max(h, w) == 256
        assert torch.isfinite(x).all()
