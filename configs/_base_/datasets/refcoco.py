"""RefCOCO / RefCOCO+ / RefCOCOg referring-expression test sets (refer layout), precision@1/5/10.

Files users put in place (offline; nothing is downloaded)::

    data/refcoco/refcoco/instances.json   + refs(unc).p     RefCOCO   splits val, testA, testB
    data/refcoco/refcoco+/instances.json  + refs(unc).p     RefCOCO+  splits val, testA, testB
    data/refcoco/refcocog/instances.json  + refs(umd).p     RefCOCOg  splits val, test
    data/refcoco/train2014/                                 COCO 2014 train images (or a symlink)

One sample per expression; the detector grounds the whole expression and RefExpMetric scores
the referred box (IoU >= 0.5). This base is RefCOCO val; a leaf config picks the family
(``refcoco_dataset`` / ``refcoco_split_by``) and a run picks the split, e.g.
``--cfg-options test_dataloader.dataset.split=testA test_evaluator.split=testA``.
"""
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner import TestLoop

from llmvision.datasets import RefCOCODataset
from llmvision.datasets.transforms import FixScaleResize, LoadAnnotations, LoadImageFromFile, PackDetInputs
from llmvision.evaluation import RefExpMetric

# ------------------------------------------------------------------ settings
data_root = 'data/refcoco/'
refcoco_dataset = 'refcoco'
refcoco_split_by = 'unc'
refcoco_split = 'val'
img_scale = (800, 1333)  # short side, long-side cap
# LLMDet's REC inference on every sample (the model reads it from the sample metainfo): score the
# expression's first noun phrase, re-score boxes by its left / right / top / bottom words
# (llmvision/models/detectors/rec_heuristic.py)
rec_heuristic = dict(all_captions=True)

# ------------------------------------------------------------------ data
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=FixScaleResize, scale=img_scale),
    dict(type=PackDetInputs),
]
test_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=RefCOCODataset,
        data_root=data_root,
        dataset=refcoco_dataset,
        split_by=refcoco_split_by,
        split=refcoco_split,
        data_prefix=dict(img='train2014/'),
        metainfo=dict(rec_heuristic=rec_heuristic),
        test_mode=True,
        pipeline=test_pipeline))
test_evaluator = dict(type=RefExpMetric, topk=(1, 5, 10), iou_thr=0.5, iou_mode='>=',
                      split=refcoco_split)
test_cfg = dict(type=TestLoop)
