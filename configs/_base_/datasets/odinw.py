"""ODinW-13 (GLIP's "object detection in the wild" subset) zero-shot test: 13 COCO-format sets,
each prompted with its own category names and scored with COCO AP; the mean over the sets is
``odinw/mean/bbox_mAP``.

Files users put in place (offline; nothing is downloaded), under ``data/odinw/`` as GLIP's
``download_odinw.py`` lays them out, one folder per set (see ``odinw_sets`` below)::

    data/odinw/AerialMaritimeDrone/large/valid/annotations_without_background.json
    data/odinw/AerialMaritimeDrone/large/valid/*.jpg
    ...
    data/odinw/pistols/export/val_annotations_without_background.json  (images in export/)

Each set is an ``LVISDataset`` (it reads any COCO-like json; the prompt is the json's category names
in id order) whose ``metainfo`` carries ``dataset_name``; ``MultiDatasetMetric`` routes every sample
to its set's ``CocoMetric`` by the packed ``dataset_name`` meta key.
"""
from mmengine.dataset import ConcatDataset, DefaultSampler, pseudo_collate
from mmengine.runner import TestLoop, ValLoop

from llmvision.datasets import LVISDataset
from llmvision.datasets.transforms import FixScaleResize, LoadAnnotations, LoadImageFromFile, PackDetInputs
from llmvision.evaluation import CocoMetric, MultiDatasetMetric

# ------------------------------------------------------------------ settings
data_root = 'data/odinw/'
img_scale = (800, 1333)  # short side, long-side cap
# (dataset_name, folder under data_root, annotation json and image folder inside it)
odinw_sets = [
    ('AerialMaritimeDrone', 'AerialMaritimeDrone/large/', 'valid/annotations_without_background.json', 'valid/'),
    ('Aquarium', 'Aquarium/Aquarium Combined.v2-raw-1024.coco/', 'valid/annotations_without_background.json',
     'valid/'),
    ('CottontailRabbits', 'CottontailRabbits/', 'valid/annotations_without_background.json', 'valid/'),
    ('EgoHands', 'EgoHands/generic/', 'valid/annotations_without_background.json', 'valid/'),
    ('NorthAmericaMushrooms', 'NorthAmericaMushrooms/North American Mushrooms.v1-416x416.coco/',
     'valid/annotations_without_background.json', 'valid/'),
    ('Packages', 'Packages/Raw/', 'valid/annotations_without_background.json', 'valid/'),
    ('PascalVOC', 'PascalVOC/', 'valid/annotations_without_background.json', 'valid/'),
    ('pistols', 'pistols/export/', 'val_annotations_without_background.json', ''),
    ('pothole', 'pothole/', 'valid/annotations_without_background.json', 'valid/'),
    ('Raccoon', 'Raccoon/Raccoon.v2-raw.coco/', 'valid/annotations_without_background.json', 'valid/'),
    ('ShellfishOpenImages', 'ShellfishOpenImages/raw/', 'valid/annotations_without_background.json', 'valid/'),
    ('thermalDogsAndPeople', 'thermalDogsAndPeople/', 'valid/annotations_without_background.json', 'valid/'),
    ('VehiclesOpenImages', 'VehiclesOpenImages/416x416/', 'valid/annotations_without_background.json', 'valid/'),
]

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
        type=ConcatDataset,
        # the sets differ in classes / cat_ids / dataset_name by design
        ignore_keys=['classes', 'cat_ids', 'dataset_name'],
        datasets=[dict(type=LVISDataset, data_root=data_root + folder, ann_file=ann, data_prefix=dict(img=img),
                       metainfo=dict(dataset_name=name), test_mode=True, pipeline=test_pipeline)
                  for name, folder, ann, img in odinw_sets]))
test_dataloader = val_dataloader

val_evaluator = dict(
    type=MultiDatasetMetric,
    prefix='odinw',
    dataset_prefixes=[name for name, _, _, _ in odinw_sets],
    dataset_key='dataset_name',
    metrics=[dict(type=CocoMetric, ann_file=data_root + folder + ann) for _, folder, ann, _ in odinw_sets])
test_evaluator = val_evaluator
val_cfg = dict(type=ValLoop)
test_cfg = dict(type=TestLoop)
