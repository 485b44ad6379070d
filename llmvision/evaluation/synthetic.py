"""Seeded synthetic COCO/LVIS-format ground truth and detections, for parity tests and benchmarks.

A public helper (``llmvision.evaluation.make_detection_set``): use it to check an evaluator against
pycocotools / lvis-api, or to time one, without a real dataset.

The set exercises what the evaluators treat specially: empty images, categories without any gt,
r/c/f frequencies, per-image ``neg_category_ids`` and ``not_exhaustive_category_ids`` (LVIS),
``iscrowd`` boxes (COCO), annotation ``area`` different from ``w*h``, small/medium/large boxes,
duplicate and near-miss detections, and false positives on negative and on unlisted categories.
"""
from typing import List, Tuple

import numpy as np


def make_detection_set(num_images: int = 50, num_categories: int = 30, seed: int = 0, protocol: str = 'lvis',
                       gt_per_image: float = 4.0, fp_per_image: float = 4.0, empty_ratio: float = 0.1,
                       cat_id_stride: int = 1) -> Tuple[dict, List[dict]]:
    """Return ``(dataset_dict, detections)``; detections are result-format dicts
    ``{image_id, category_id, bbox [x, y, w, h], score}``.

    Args:
        protocol: ``'lvis'`` adds neg / not-exhaustive lists and frequencies; ``'coco'`` adds crowd boxes.
        cat_id_stride: category ids are ``1 + stride * i`` (non-contiguous ids catch label->id bugs).
    """
    rng = np.random.default_rng(seed)
    lvis = protocol == 'lvis'
    cat_ids = [1 + cat_id_stride * i for i in range(num_categories)]
    freqs = rng.choice(['r', 'c', 'f'], size=num_categories, p=[0.3, 0.4, 0.3])
    categories = [{'id': c, 'name': f'cat_{c}', 'frequency': str(f)} for c, f in zip(cat_ids, freqs)]
    # a tail of categories never annotated; a skewed distribution over the rest
    n_with_gt = max(1, int(num_categories * 0.85))
    cat_p = rng.pareto(1.0, n_with_gt) + 0.05
    cat_p /= cat_p.sum()

    images, anns, dets = [], [], []
    ann_id = 1
    for i in range(num_images):
        img_id = 1000 + 3 * i
        h, w = int(rng.integers(240, 800)), int(rng.integers(240, 800))
        image = {'id': img_id, 'height': h, 'width': w, 'file_name': f'{img_id:012d}.jpg'}
        n_gt = 0 if rng.random() < empty_ratio else int(rng.poisson(gt_per_image))
        present = set()
        for _ in range(n_gt):
            c = cat_ids[int(rng.choice(n_with_gt, p=cat_p))]
            present.add(c)
            scale = rng.choice([0.03, 0.1, 0.3])  # small / medium / large mix
            bw = max(2.0, float(rng.uniform(0.5, 1.5) * scale * w))
            bh = max(2.0, float(rng.uniform(0.5, 1.5) * scale * h))
            x, y = float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh))
            ann = {'id': ann_id, 'image_id': img_id, 'category_id': c, 'bbox': [x, y, bw, bh],
                   'area': bw * bh * float(rng.uniform(0.5, 1.0))}
            if not lvis:
                ann['iscrowd'] = int(rng.random() < 0.08)
            anns.append(ann)
            ann_id += 1
            # detections of this gt: none, one or several jittered copies, sometimes mislabeled
            for _ in range(int(rng.choice([0, 1, 1, 2, 3]))):
                jit = rng.normal(0, float(rng.choice([0.02, 0.08, 0.25])), 4)
                bx, by = x + jit[0] * bw, y + jit[1] * bh
                dw, dh = bw * float(np.exp(jit[2])), bh * float(np.exp(jit[3]))
                dc = c if rng.random() < 0.85 else cat_ids[int(rng.integers(num_categories))]
                dets.append({'image_id': img_id, 'category_id': dc, 'bbox': [bx, by, dw, dh],
                             'score': float(rng.random())})
        if lvis:
            absent = [c for c in cat_ids if c not in present]
            image['neg_category_ids'] = sorted(int(c) for c in rng.choice(
                absent, size=min(len(absent), int(rng.integers(0, 6))), replace=False))
            pres = sorted(present)
            image['not_exhaustive_category_ids'] = sorted(int(c) for c in rng.choice(
                pres, size=min(len(pres), int(rng.integers(0, 2))), replace=False)) if pres else []
        images.append(image)
        # false positives: on negative categories, present categories and unlisted categories
        for _ in range(int(rng.poisson(fp_per_image))):
            pool = (image.get('neg_category_ids') or cat_ids) if rng.random() < 0.5 else cat_ids
            dc = int(rng.choice(pool))
            bw, bh = float(rng.uniform(4, w / 2)), float(rng.uniform(4, h / 2))
            dets.append({'image_id': img_id, 'category_id': dc,
                         'bbox': [float(rng.uniform(0, w - bw)), float(rng.uniform(0, h - bh)), bw, bh],
                         'score': float(rng.random() * 0.8)})
    order = rng.permutation(len(anns))  # annotation order is not sorted by image
    dataset = {'images': images, 'annotations': [anns[j] for j in order], 'categories': categories}
    return dataset, dets
