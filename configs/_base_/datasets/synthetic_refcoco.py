"""Synthetic RefCOCO (refer layout, ``data/synthetic/refcoco``): referring-expression test set.

Each sample is one expression; the detector grounds the whole expression and RefExpMetric scores
precision@1/5/10 at IoU >= 0.5 against the referred box.
"""
from mmengine.dataset import DefaultSampler, pseudo_collate

from llmvision.datasets import RefCOCODataset
from llmvision.datasets.transforms import FixScaleResize, LoadAnnotations, LoadImageFromFile, PackDetInputs
from llmvision.evaluation import RefExpMetric

data_root = 'data/synthetic/'
refcoco_split = 'val'
# LLMDet's REC inference on every sample (the model reads it from the sample metainfo): score the
# expression's first noun phrase, re-score boxes by its left / right / top / bottom words
# (llmvision/models/detectors/rec_heuristic.py)
rec_heuristic = dict(all_captions=True)

test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=FixScaleResize, scale=(176, 240)),
    dict(type=PackDetInputs),
]
test_dataloader = dict(
    batch_size=4,
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=RefCOCODataset,
        data_root=data_root + 'refcoco',
        dataset='refcoco',
        split_by='unc',
        split=refcoco_split,
        data_prefix=dict(img='../images/'),
        metainfo=dict(rec_heuristic=rec_heuristic),
        test_mode=True,
        pipeline=test_pipeline))
test_evaluator = dict(type=RefExpMetric, topk=(1, 5, 10), iou_thr=0.5, iou_mode='>=',
                      split=refcoco_split)
