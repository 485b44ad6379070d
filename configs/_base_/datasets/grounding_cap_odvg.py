"""LLMDet co-training data (GroundingCap-1M style): ODVG grounding-form lines that also carry a
long image caption (``conversations``) and region phrases, for the detector and the captioner.

Files users put in place (offline; ODVG jsonl, one image per line, REFERENCE.md section 2)::

    data/odvg/coco/coco_train2017_cap_vg.jsonl,      images  data/odvg/coco/train2017/
    data/odvg/flickr30k/flickr_train_cap_vg.jsonl,   images  data/odvg/flickr30k/images/
    data/odvg/gqa/gqa_train_cap_vg.jsonl,            images  data/odvg/gqa/images/
    data/odvg/llava_cap/llava_recap_558k_vg.jsonl,   images  data/odvg/llava_cap/images/
    data/odvg/v3det/v3det_train_cap_vg.jsonl,        images  data/odvg/v3det/images/

GRIT-style captioned grounding lines (or any other ODVG grounding set) join the mix as one more
``(ann_file, image folder)`` pair in ``grounding_cap_sets``.

A line without ``conversations`` still trains the detector (its image caption loss is skipped and
counted); a line with no regions trains as a negative. Augmentation as in pre-training: flip,
short side 480..800 (step 32), long side <= 1333; 2 images per GPU, aspect-ratio grouped.
"""
from mmengine.dataset import ConcatDataset, InfiniteSampler, pseudo_collate

from llmvision.datasets import AspectRatioBatchSampler, ODVGDataset
from llmvision.datasets.transforms import (
    FilterEmptyBoxes,
    LoadAnnotations,
    LoadImageFromFile,
    PackDetInputs,
    RandomChoiceResize,
    RandomFlip,
)

# ------------------------------------------------------------------ settings
data_root = 'data/odvg/'
train_scales = list(range(480, 801, 32))  # short sides 480, 512, ..., 800
max_long_side = 1333
train_batch_size = 2  # per GPU
max_bad_samples = 1000
# (ann_file, image folder) under data_root
grounding_cap_sets = [
    ('coco/coco_train2017_cap_vg.jsonl', 'coco/train2017/'),
    ('flickr30k/flickr_train_cap_vg.jsonl', 'flickr30k/images/'),
    ('gqa/gqa_train_cap_vg.jsonl', 'gqa/images/'),
    ('llava_cap/llava_recap_558k_vg.jsonl', 'llava_cap/images/'),
    ('v3det/v3det_train_cap_vg.jsonl', 'v3det/images/'),
]

# LLMDet's released data pipeline has no flip (a flip would swap left/right in the long captions)
flip_prob = 0.0

# ------------------------------------------------------------------ data
grounding_train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomFlip, prob=flip_prob),
    dict(type=RandomChoiceResize, scales=train_scales, max_long_side=max_long_side),
    dict(type=FilterEmptyBoxes, min_size=1.0),
    dict(type=PackDetInputs),
]
train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    batch_sampler=dict(type=AspectRatioBatchSampler),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=ConcatDataset,
        datasets=[dict(type=ODVGDataset, data_root=data_root, ann_file=ann, data_prefix=dict(img=img),
                       filter_cfg=dict(filter_empty_gt=False), on_bad_sample='skip',
                       max_bad_samples=max_bad_samples, pipeline=grounding_train_pipeline)
                  for ann, img in grounding_cap_sets]))
