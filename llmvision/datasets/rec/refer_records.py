"""Read the RefCOCO "refer" layout into one flat record per (ref, sentence).

Layout (REFERENCE.md section 6)::

    <data_root>/<dataset>/instances.json      COCO images / annotations (bbox [x, y, w, h])
    <data_root>/<dataset>/refs(<split_by>).p  pickle list of refs: ref_id, ann_id, image_id, split,
                                              sentences [{sent, tokens, sent_id?}]

A record is a plain dict: ``key`` (``'<img_id>_<ref_id>_<sent_id>'``), ``img_id``, ``ref_id``,
``sent_id``, ``expression``, ``img_path``, ``height``, ``width``, ``gt_bbox`` (pixel xyxy list),
``category`` (name), ``image_anns`` (every annotation of the image: ``ann_id``, ``bbox`` xyxy,
``category``), ``needs_reasoning`` (another object of the image shares the target's category,
so the category name alone does not identify it). Candidate sources and the fine-tuning data builder all read records.
"""
import json

import os.path as osp
import pickle
from typing import Dict, List, Optional

from llmvision.structures import xywh_to_xyxy


def rec_key(img_id, ref_id, sent_id) -> str:
    """The sample key used by candidate files: ``'<img_id>_<ref_id>_<sent_id>'``."""
    return f'{img_id}_{ref_id}_{sent_id}'


def _xyxy(bbox) -> List[float]:
    import torch
    return [float(v) for v in xywh_to_xyxy(torch.tensor(bbox, dtype=torch.float64)).tolist()]


def load_refer_records(data_root: str, dataset: str = 'refcoco', split_by: str = 'unc',
                       split: Optional[str] = 'val', img_prefix: Optional[str] = None) -> List[Dict]:
    """Records of one split (``split=None``: all splits) in refs order, one per sentence.

    Args:
        data_root: folder holding ``<dataset>/``.
        dataset: ``refcoco`` / ``refcoco+`` / ``refcocog`` (any folder name).
        split_by: ``unc`` / ``umd`` / ``google`` (picks ``refs(<split_by>).p``).
        split: ``train`` / ``val`` / ``testA`` / ``testB`` / ``test`` or ``None``.
        img_prefix: folder of the images (COCO train2014); default ``<data_root>/<dataset>/images``.
    """
    folder = osp.join(data_root, dataset)
    inst_file = osp.join(folder, 'instances.json')
    refs_file = osp.join(folder, f'refs({split_by}).p')
    for f in (inst_file, refs_file):
        if not osp.isfile(f):
            raise FileNotFoundError(f'RefCOCO refer layout: {f} not found (expected <data_root>/'
                                    f'<dataset>/instances.json and refs(<split_by>).p)')
    with open(inst_file) as f:
        inst = json.load(f)
    with open(refs_file, 'rb') as f:
        refs = pickle.load(f)
    img_prefix = img_prefix if img_prefix is not None else osp.join(folder, 'images')
    cats = {c['id']: c['name'] for c in inst.get('categories', [])}
    images = {im['id']: im for im in inst['images']}
    anns, by_image = {}, {}
    for a in inst['annotations']:
        if a['category_id'] not in cats:
            raise KeyError(f'{inst_file}: annotation {a["id"]} has unknown category_id '
                           f'{a["category_id"]}')
        rec = dict(ann_id=a['id'], bbox=_xyxy(a['bbox']), category=cats[a['category_id']])
        anns[a['id']] = rec
        by_image.setdefault(a['image_id'], []).append(rec)
    if split is not None and split not in {r.get('split') for r in refs}:
        known = sorted(map(str, {r.get('split') for r in refs}))
        raise ValueError(f'split {split!r} not in {refs_file} (splits there: {known})')
    records = []
    for ri, ref in enumerate(refs):
        if split is not None and ref.get('split') != split:
            continue
        for key in ('ref_id', 'ann_id', 'image_id', 'sentences'):
            if key not in ref:
                raise KeyError(f'{refs_file}: ref #{ri} has no {key!r}')
        if ref['ann_id'] not in anns:
            raise KeyError(f'{refs_file}: ref {ref["ref_id"]} points at ann_id {ref["ann_id"]} '
                           f'missing from {inst_file}')
        if ref['image_id'] not in images:
            raise KeyError(f'{refs_file}: ref {ref["ref_id"]} points at image_id '
                           f'{ref["image_id"]} missing from {inst_file}')
        im, ann = images[ref['image_id']], anns[ref['ann_id']]
        image_anns = by_image.get(ref['image_id'], [])
        same = sum(a['category'] == ann['category'] for a in image_anns)
        for si, sent in enumerate(ref['sentences']):
            sent_id = sent.get('sent_id', si)
            records.append(dict(
                key=rec_key(ref['image_id'], ref['ref_id'], sent_id), img_id=ref['image_id'],
                ref_id=ref['ref_id'], sent_id=sent_id, expression=sent['sent'],
                img_path=osp.join(img_prefix, im['file_name']), height=im['height'],
                width=im['width'], gt_bbox=ann['bbox'], category=ann['category'],
                image_anns=image_anns, needs_reasoning=same > 1))
    return records


def split_names(data_root: str, dataset: str = 'refcoco', split_by: str = 'unc') -> List[str]:
    """Split names present in ``refs(<split_by>).p`` (sorted)."""
    with open(osp.join(data_root, dataset, f'refs({split_by}).p'), 'rb') as f:
        return sorted({r.get('split') for r in pickle.load(f)} - {None})


__all__ = ['load_refer_records', 'rec_key', 'split_names']
