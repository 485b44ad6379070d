"""Grounding-DINO pre-training data (MM-GDINO "O365 + GoldG"): Objects365 in ODVG detection form
plus GoldG (Flickr30k entities + GQA/VG, MDETR's no-COCO mix) in ODVG grounding form.

Files users put in place (offline; ODVG jsonl as mmdet's ``goldg2odvg.py`` / ``coco2odvg.py`` write
them, one image per line)::

    data/odvg/o365/o365v1_train_odvg.jsonl, o365v1_label_map.json, images/
    data/odvg/flickr30k/final_flickr_separateGT_train_vg.jsonl, images/
    data/odvg/gqa/final_mixed_train_no_coco_vg.jsonl, images/

Augmentation (REFERENCE.md section 1): horizontal flip (phrases with left/right swapped), multi-scale
resize with the short side drawn from 480..800 (step 32) and the long side <= 1333. Objects365 has
365 names, more than one 256-token prompt holds: each image gets its positives plus sampled
negatives (``RandomSamplingNegPos``, counted with the BERT tokenizer). Bad lines and missing images
are logged, counted skips. Batches are aspect-ratio grouped, 2 images per GPU.
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
    RandomSamplingNegPos,
)

# ------------------------------------------------------------------ settings
data_root = 'data/odvg/'
bert_tokenizer = 'checkpoints/bert-base-uncased'  # token counts for the O365 prompt budget
train_scales = list(range(480, 801, 32))  # short sides 480, 512, ..., 800
max_long_side = 1333
train_batch_size = 2  # per GPU
max_bad_samples = 1000

# ------------------------------------------------------------------ data
grounding_train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomChoiceResize, scales=train_scales, max_long_side=max_long_side),
    dict(type=FilterEmptyBoxes, min_size=1.0),
    dict(type=PackDetInputs),
]
detection_train_pipeline = [
    dict(type=LoadImageFromFile),
    dict(type=LoadAnnotations),
    dict(type=RandomFlip, prob=0.5),
    dict(type=RandomChoiceResize, scales=train_scales, max_long_side=max_long_side),
    dict(type=FilterEmptyBoxes, min_size=1.0),
    dict(type=RandomSamplingNegPos, num_sample_negative=85, max_tokens=256, full_sampling_prob=0.5,
         tokenizer=bert_tokenizer),
    dict(type=PackDetInputs),
]
o365_dataset = dict(
    type=ODVGDataset, data_root=data_root, ann_file='o365/o365v1_train_odvg.jsonl',
    label_map_file='o365/o365v1_label_map.json', data_prefix=dict(img='o365/images/'),
    filter_cfg=dict(filter_empty_gt=False), on_bad_sample='skip', max_bad_samples=max_bad_samples,
    pipeline=detection_train_pipeline)
flickr_dataset = dict(
    type=ODVGDataset, data_root=data_root, ann_file='flickr30k/final_flickr_separateGT_train_vg.jsonl',
    data_prefix=dict(img='flickr30k/images/'), filter_cfg=dict(filter_empty_gt=False),
    on_bad_sample='skip', max_bad_samples=max_bad_samples, pipeline=grounding_train_pipeline)
gqa_dataset = dict(
    type=ODVGDataset, data_root=data_root, ann_file='gqa/final_mixed_train_no_coco_vg.jsonl',
    data_prefix=dict(img='gqa/images/'), filter_cfg=dict(filter_empty_gt=False),
    on_bad_sample='skip', max_bad_samples=max_bad_samples, pipeline=grounding_train_pipeline)

train_dataloader = dict(
    batch_size=train_batch_size,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=InfiniteSampler, shuffle=True),
    batch_sampler=dict(type=AspectRatioBatchSampler),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=ConcatDataset, ignore_keys=['classes', 'cat_ids'],
                 datasets=[o365_dataset, flickr_dataset, gqa_dataset]))
