"""Synthetic grounding set (``tools/make_synthetic_dataset.py --out data/synthetic``).

Train: ODVG detection-form lines (the prompt is all 24 category names, as at test time, so absent
categories are negatives; the grounding-form captions name only the objects present and trained
a tiny model to fixed AP50 0.37 vs 0.77 in the same CPU budget). Val/test: the LVIS-format val
split (all 24 names as the prompt), scored with LVIS fixed AP. Images are 256x320; the tiny model
trains at short side 160-192 and tests at 176 (CPU budget).
"""
from mmengine.dataset import DefaultSampler, InfiniteSampler, pseudo_collate

from llmvision.datasets import LVISDataset, ODVGDataset
from llmvision.datasets.transforms import (
    FilterEmptyBoxes,
    FixScaleResize,
    LoadAnnotations,
    LoadImageFromFile,
    PackDetInputs,
    RandomChoiceResize,
    RandomFlip,
)
from llmvision.evaluation import LVISFixedAPMetric

data_root = 'data/synthetic/'
img_scale = (176, 240)  # short side, long-side cap

train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomChoiceResize, scales=[160, 176, 192], max_long_side=240),
    dict(type=FilterEmptyBoxes, min_size=1.0),
    dict(type=PackDetInputs),
]
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=FixScaleResize, scale=img_scale),
    dict(type=PackDetInputs),
]

train_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=ODVGDataset,
        data_root=data_root,
        ann_file='odvg/train_detection.jsonl',
        label_map_file='odvg/label_map.json',
        data_prefix=dict(img='images/'),
        filter_cfg=dict(filter_empty_gt=False),
        on_bad_sample='skip',
        pipeline=train_pipeline))

val_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=LVISDataset,
        data_root=data_root,
        ann_file='lvis/lvis_v1_val.json',
        data_prefix=dict(img='images/'),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type=LVISFixedAPMetric, ann_file=data_root + 'lvis/lvis_v1_val.json')
test_evaluator = val_evaluator
