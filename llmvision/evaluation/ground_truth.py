"""COCO / LVIS annotation json -> :class:`~llmvision.evaluation.box_ap.BoxGroundTruth`.

Reads the keys the reference evaluators read: ``images[].id`` (+ LVIS ``neg_category_ids``,
``not_exhaustive_category_ids``), ``categories[].id`` (+ LVIS ``frequency``), ``annotations[]``
``id, image_id, category_id, bbox [x, y, w, h], area`` (missing ``area`` -> ``w*h``), COCO
``iscrowd`` / LVIS ``ignore``. Bad entries raise ``ValueError`` naming the file and the entry; a
box is checked with the dataset loaders' rule (:mod:`llmvision.structures.box_checks`: 4 finite
numbers, positive width and height, not fully outside its image), so a file the loader rejects
is not scored either. A box partly outside its image is kept as annotated (as the reference
evaluators do).
"""
import json
import os
from typing import Dict, Optional, Union

import numpy as np

from llmvision.structures.box_checks import InvalidBoxError, check_xywh_box

from .box_ap import BoxGroundTruth


def load_json(path: str) -> dict:
    """Read a json file with a clear error for a missing or broken file."""
    if not os.path.isfile(path):
        raise FileNotFoundError(f'annotation file not found: {path}')
    with open(path, 'r') as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f'{path}: invalid json at line {e.lineno}: {e.msg}') from e


def build_ground_truth(dataset: Union[str, dict], protocol: str = 'lvis',
                       source: Optional[str] = None) -> BoxGroundTruth:
    """Build flat gt arrays from a COCO/LVIS dataset dict or json path.

    Args:
        dataset: the parsed json dict, or a path to it.
        protocol: ``'lvis'`` (ignore = ``ignore`` key, no crowd, image neg / not-exhaustive lists,
            category frequency) or ``'coco'`` (ignore = crowd = ``iscrowd``).
    """
    if isinstance(dataset, str):
        source = dataset
        dataset = load_json(dataset)
    src = source or '<annotation dict>'
    for key in ('images', 'annotations', 'categories'):
        if key not in dataset:
            raise ValueError(f'{src}: missing top-level key {key!r}')
    lvis = protocol == 'lvis'
    img_ids = np.array(sorted(int(im['id']) for im in dataset['images']), dtype=np.int64)
    cat_ids = np.array(sorted(int(c['id']) for c in dataset['categories']), dtype=np.int64)
    if len(np.unique(img_ids)) != len(img_ids):
        raise ValueError(f'{src}: duplicate image ids in images[]')
    img_pos: Dict[int, int] = {int(i): p for p, i in enumerate(img_ids)}
    cat_pos: Dict[int, int] = {int(c): p for p, c in enumerate(cat_ids)}

    images = {int(im['id']): im for im in dataset['images']}
    anns = dataset['annotations']
    n = len(anns)
    img_index = np.empty(n, np.int64)
    cat_index = np.empty(n, np.int64)
    ann_ids = np.empty(n, np.int64)
    boxes = np.empty((n, 4), np.float64)
    areas = np.empty(n, np.float64)
    ignore = np.zeros(n, bool)
    iscrowd = np.zeros(n, bool)
    for j, a in enumerate(anns):
        try:
            img_index[j] = img_pos[int(a['image_id'])]
            cat_index[j] = cat_pos[int(a['category_id'])]
            ann_ids[j] = int(a['id'])
            image = images[int(a['image_id'])]
            check_xywh_box(a['bbox'], image.get('height'), image.get('width'), key='bbox')
            boxes[j] = [float(v) for v in a['bbox']]
        except KeyError as e:
            raise ValueError(f'{src}: annotations[{j}] (id {a.get("id")}): unknown or missing {e}') from e
        except InvalidBoxError as e:
            raise ValueError(f'{src}: annotations[{j}] (id {a.get("id")}): {e}') from None
        except (TypeError, ValueError) as e:
            raise ValueError(f'{src}: annotations[{j}] (id {a.get("id")}): bad value: {e}') from e
        areas[j] = float(a['area']) if 'area' in a else boxes[j, 2] * boxes[j, 3]
        if lvis:
            ignore[j] = bool(a.get('ignore', 0))
        else:
            iscrowd[j] = ignore[j] = bool(a.get('iscrowd', 0))
    neg = nel = freq = None
    if lvis:
        neg, nel = [], []
        for i in img_ids:
            im = images[int(i)]
            neg.append(np.array([cat_pos[int(c)] for c in im.get('neg_category_ids', []) if int(c) in cat_pos],
                                dtype=np.int64))
            nel.append(np.array([cat_pos[int(c)] for c in im.get('not_exhaustive_category_ids', [])
                                 if int(c) in cat_pos], dtype=np.int64))
        cats = {int(c['id']): c for c in dataset['categories']}
        freq = [cats[int(c)].get('frequency', '') for c in cat_ids]
    return BoxGroundTruth(img_ids, cat_ids, img_index, cat_index, ann_ids, boxes, areas, ignore, iscrowd,
                          neg, nel, freq)
