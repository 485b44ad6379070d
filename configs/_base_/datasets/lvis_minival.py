"""LVIS v1 minival (GLIP's 5k-image subset) zero-shot test set, scored with LVIS fixed AP.

Files users put in place (offline; nothing is downloaded)::

    data/lvis/lvis_v1_minival.json    GLIP's minival json (``lvis_v1_minival_inserted_image_name.json``)
    data/lvis/lvis_v1_val.json        the official LVIS v1 val json (19,809 images), for the
                                      ``*_lvis_val.py`` configs, which swap the annotation file
    data/lvis/val2017/, train2017/    COCO 2017 images (image paths come from ``file_name`` or the
                                      ``coco_url`` tail, e.g. ``val2017/000000397133.jpg``)

Every image is prompted with all 1203 category names (the model splits them into chunks of
``test_cfg.chunked_size`` = 40 names per prompt). Metric: LVIS fixed AP (top 10,000 detections per
category over the set, no per-image cap); the model still returns ``test_cfg.max_per_img`` = 300
boxes per image, as in MM-GDINO / LLMDet.
"""
from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner import TestLoop, ValLoop

from llmvision.datasets import LVISDataset
from llmvision.datasets.transforms import FixScaleResize, LoadAnnotations, LoadImageFromFile, PackDetInputs
from llmvision.evaluation import LVISFixedAPMetric

# ------------------------------------------------------------------ settings
data_root = 'data/lvis/'
lvis_ann_file = 'lvis_v1_minival.json'
img_scale = (800, 1333)  # short side, long-side cap

# ------------------------------------------------------------------ data
test_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=FixScaleResize, scale=img_scale),
    dict(type=PackDetInputs),
]
val_dataloader = dict(
    batch_size=1,
    num_workers=2,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=LVISDataset,
        data_root=data_root,
        ann_file=lvis_ann_file,
        data_prefix=dict(img=''),
        test_mode=True,
        pipeline=test_pipeline))
test_dataloader = val_dataloader

val_evaluator = dict(type=LVISFixedAPMetric, ann_file=data_root + lvis_ann_file, max_dets_per_cat=10000)
test_evaluator = val_evaluator
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
