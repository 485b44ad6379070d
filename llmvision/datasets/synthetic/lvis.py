"""LVIS v1-format json for synthetic images.

``{"info", "licenses", "images": [{id, file_name, height, width, not_exhaustive_category_ids,
neg_category_ids}], "annotations": [{id, image_id, category_id, bbox [x, y, w, h], area,
segmentation [[box polygon]], iscrowd 0}], "categories": [{id (from 1), name, synset, synonyms,
def, frequency, image_count, instance_count}]}``.

Frequency follows LVIS's rule (rare / common / frequent by the number of *training* images that
contain the category) with thresholds scaled to the set's size: see :func:`frequency_thresholds`.
Annotations are exhaustive, so ``not_exhaustive_category_ids`` is empty; ``neg_category_ids`` lists
categories verified absent from the image.
"""
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .odvg import ImageRecord


def frequency_thresholds(num_train: int) -> Tuple[int, int]:
    """``(r_max, f_min)``: rare if ``image_count <= r_max``, frequent if ``>= f_min``, else common.

    LVIS uses 10 and 100 images on ~100k; here ``r_max = max(1, round(5% of num_train))`` and
    ``f_min = max(r_max + 2, ceil(25% of num_train))`` so every set size has all three bands.
    """
    r_max = max(1, int(round(0.05 * num_train)))
    f_min = max(r_max + 2, int(np.ceil(0.25 * num_train)))
    return r_max, f_min


def frequency_of(image_count: int, num_train: int) -> str:
    """``'r'``, ``'c'`` or ``'f'`` for a category found in ``image_count`` training images."""
    r_max, f_min = frequency_thresholds(num_train)
    return 'r' if image_count <= r_max else ('f' if image_count >= f_min else 'c')


def lvis_categories(categories: Sequence[str], train: Sequence[ImageRecord]) -> List[Dict]:
    """Category entries with counts and frequency measured on ``train``."""
    image_count = [0] * len(categories)
    instance_count = [0] * len(categories)
    for rec in train:
        for lab in {o.label for o in rec.scene.objects}:
            image_count[lab] += 1
        for o in rec.scene.objects:
            instance_count[o.label] += 1
    cats = []
    for i, name in enumerate(categories):
        colour, shape = name.split(' ')
        cats.append({'id': i + 1, 'name': name, 'synset': f'{colour}_{shape}.n.01',
                     'synonyms': [name, f'{shape} that is {colour}'],
                     'def': f'a {shape} drawn in {colour}',
                     'frequency': frequency_of(image_count[i], len(train)),
                     'image_count': image_count[i], 'instance_count': instance_count[i]})
    return cats


def lvis_json(records: Sequence[ImageRecord], categories: List[Dict], rng: np.random.Generator,
              max_neg: int = 6) -> Dict:
    """LVIS json for ``records`` (one split) with the given ``categories`` entries."""
    images, anns = [], []
    num_cats = len(categories)
    for rec in records:
        present = sorted({o.label + 1 for o in rec.scene.objects})
        absent = [c for c in range(1, num_cats + 1) if c not in present]
        k = int(rng.integers(1, max_neg + 1))
        neg = sorted(int(c) for c in rng.choice(absent, size=min(k, len(absent)), replace=False))
        images.append({'id': rec.image_id, 'file_name': rec.file_name, 'height': rec.height,
                       'width': rec.width, 'not_exhaustive_category_ids': [], 'neg_category_ids': neg})
        for ann_id, o in zip(rec.ann_ids, rec.scene.objects):
            x1, y1, x2, y2 = (float(v) for v in o.box)
            anns.append({'id': ann_id, 'image_id': rec.image_id, 'category_id': o.label + 1,
                         'bbox': [x1, y1, x2 - x1, y2 - y1], 'area': (x2 - x1) * (y2 - y1),
                         'segmentation': [[x1, y1, x2, y1, x2, y2, x1, y2]], 'iscrowd': 0})
    return {'info': {'description': 'llmvision synthetic shapes (LVIS v1 format)', 'version': '1.0'},
            'licenses': [], 'images': images, 'annotations': anns, 'categories': categories}
