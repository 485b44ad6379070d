"""RefCOCO "refer" layout for synthetic images: ``instances.json`` + ``refs(unc).p``.

* ``instances.json``: COCO format (images with at least one ref, all their annotations with
  ``bbox`` ``[x, y, w, h]``, ``area`` = drawn pixels of the shape, categories from id 1).
* ``refs(unc).p``: pickled list of ``{ref_id, ann_id, image_id, category_id, split, file_name,
  sent_ids, sentences: [{sent, raw, tokens, sent_id}]}``. Splits: train images -> ``'train'``;
  val images go round-robin to ``'val'``, ``'testA'``, ``'testB'``.

Expressions come from :func:`.language.referring_expressions` (true and unambiguous); objects
that share their category with another object need spatial/size reasoning to be told apart.
"""
import pickle
from typing import Dict, List, Sequence, Tuple

import numpy as np

from .language import referring_expressions
from .odvg import ImageRecord

EVAL_SPLITS = ('val', 'testA', 'testB')
PICKLE_PROTOCOL = 4


def build_refs(records: Sequence[ImageRecord], rng: np.random.Generator,
               max_sentences: int = 3) -> Tuple[List[Dict], Dict[str, int]]:
    """Refs for every object that has at least one expression.

    Returns:
        refs: the refer-format list.
        stats: ``{'refs', 'sentences', 'reasoning_refs', 'relation_sentences'}`` counts.
    """
    refs: List[Dict] = []
    stats = {'refs': 0, 'sentences': 0, 'reasoning_refs': 0, 'relation_sentences': 0}
    eval_turn = 0
    for rec in records:
        img_refs = []
        for k, (ann_id, obj) in enumerate(zip(rec.ann_ids, rec.scene.objects)):
            exprs, reasoning = referring_expressions(rec.scene, k)
            if not exprs:
                continue
            pick = sorted(rng.choice(len(exprs), size=min(max_sentences, len(exprs)), replace=False))
            img_refs.append((ann_id, obj, [exprs[i] for i in pick], reasoning))
        if not img_refs:
            continue
        if rec.split == 'train':
            split = 'train'
        else:
            split = EVAL_SPLITS[eval_turn % len(EVAL_SPLITS)]
            eval_turn += 1
        for ann_id, obj, exprs, reasoning in img_refs:
            ref_id = len(refs)
            sentences = []
            for e in exprs:
                sent_id = stats['sentences']
                stats['sentences'] += 1
                stats['relation_sentences'] += any(r in e for r in (' left of ', ' right of ', ' above ',
                                                                    ' below '))
                sentences.append({'sent': e.lower(), 'raw': e, 'tokens': e.lower().split(),
                                  'sent_id': sent_id})
            refs.append({'ref_id': ref_id, 'ann_id': ann_id, 'image_id': rec.image_id,
                         'category_id': obj.label + 1, 'split': split, 'file_name': rec.file_name,
                         'sent_ids': [s['sent_id'] for s in sentences], 'sentences': sentences})
            stats['refs'] += 1
            stats['reasoning_refs'] += int(reasoning)
    return refs, stats


def instances_json(records: Sequence[ImageRecord], refs: Sequence[Dict], categories: Sequence[str]) -> Dict:
    """COCO-format instances of the images that carry refs."""
    with_refs = {r['image_id'] for r in refs}
    images, anns = [], []
    for rec in records:
        if rec.image_id not in with_refs:
            continue
        images.append({'id': rec.image_id, 'file_name': rec.file_name, 'height': rec.height,
                       'width': rec.width})
        for ann_id, o in zip(rec.ann_ids, rec.scene.objects):
            x1, y1, x2, y2 = (float(v) for v in o.box)
            anns.append({'id': ann_id, 'image_id': rec.image_id, 'category_id': o.label + 1,
                         'bbox': [x1, y1, x2 - x1, y2 - y1], 'area': float(o.area),
                         'segmentation': [[x1, y1, x2, y1, x2, y2, x1, y2]], 'iscrowd': 0})
    cats = [{'id': i + 1, 'name': n, 'supercategory': n.split(' ')[1]} for i, n in enumerate(categories)]
    return {'info': {'description': 'llmvision synthetic shapes (refer layout)'}, 'licenses': [],
            'images': images, 'annotations': anns, 'categories': cats}


def dumps_refs(refs: Sequence[Dict]) -> bytes:
    """Pickle bytes of the refs list (fixed protocol, so identical input gives identical bytes)."""
    return pickle.dumps(list(refs), protocol=PICKLE_PROTOCOL)
