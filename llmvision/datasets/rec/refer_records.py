"""The RefCOCO "refer" layout as one flat record per (ref, sentence), for the REC selector.

The files are read by :mod:`llmvision.datasets.refer` (the reader ``RefCOCODataset`` uses too:
one reader, one error policy, ``refs(*).p`` through a restricted unpickler).

A record is a plain dict: ``key`` (``'<img_id>_<ref_id>_<sent_id>'``), ``img_id``, ``ref_id``,
``sent_id``, ``expression``, ``img_path``, ``height``, ``width``, ``gt_bbox`` (pixel xyxy list),
``category`` (name), ``image_anns`` (every annotation of the image: ``ann_id``, ``bbox`` xyxy,
``category``), ``needs_reasoning`` (another object of the image shares the target's category,
so the category name alone does not identify it). Candidate sources and the fine-tuning data builder all read records.
"""
import os.path as osp
from typing import Dict, List, Optional

from ..annotation_checks import check_xywh_box
from ..bad_samples import BadSampleError, BadSamplePolicy, parse_with_policy
from ..refer import ReferLayout, describe_ref, parse_ref, read_refer


def rec_key(img_id, ref_id, sent_id) -> str:
    """The sample key used by candidate files: ``'<img_id>_<ref_id>_<sent_id>'``."""
    return f'{img_id}_{ref_id}_{sent_id}'


def _image_anns(layout: ReferLayout, image: dict, height: int, width: int, raw_by_image: Dict,
                cache: Dict) -> List[Dict]:
    """Every annotation of ``image``: ``ann_id``, ``bbox`` (validated pixel xyxy), ``category``."""
    if image['id'] not in cache:
        anns = []
        for a in raw_by_image.get(image['id'], []):
            if a.get('category_id') not in layout.categories:
                raise BadSampleError(f"annotation {a.get('id')} has unknown category_id {a.get('category_id')!r}",
                                     kind='missing reference')
            anns.append(dict(ann_id=a['id'], bbox=check_xywh_box(a.get('bbox'), height, width,
                                                                 key=f"annotation {a['id']} bbox"),
                             category=layout.categories[a['category_id']]))
        cache[image['id']] = anns
    return cache[image['id']]


def load_refer_records(data_root: str, dataset: str = 'refcoco', split_by: str = 'unc',
                       split: Optional[str] = 'val', img_prefix: Optional[str] = None,
                       bad_samples: Optional[BadSamplePolicy] = None) -> List[Dict]:
    """Records of one split (``split=None``: all splits) in refs order, one per sentence.

    Args:
        data_root: folder holding ``<dataset>/``.
        dataset: ``refcoco`` / ``refcoco+`` / ``refcocog`` (any folder name).
        split_by: ``unc`` / ``umd`` / ``google`` (picks ``refs(<split_by>).p``).
        split: ``train`` / ``val`` / ``testA`` / ``testB`` / ``test`` or ``None``.
        img_prefix: folder of the images (COCO train2014); default ``<data_root>/<dataset>/images``.
        bad_samples: what to do with a bad ref (default: raise a :class:`BadSampleError` naming the
            refs file and the ref); ``BadSamplePolicy('skip')`` logs and counts it.
    """
    layout = read_refer(data_root, dataset, split_by)
    img_prefix = img_prefix if img_prefix is not None else osp.join(data_root, dataset, 'images')
    raw_by_image: Dict[int, List[Dict]] = {}
    for a in layout.anns.values():
        raw_by_image.setdefault(a.get('image_id'), []).append(a)
    by_image: Dict[int, List[Dict]] = {}

    def records_of(entry) -> List[Dict]:
        r = parse_ref(layout, entry[1])
        image_anns = _image_anns(layout, r.image, r.height, r.width, raw_by_image, by_image)
        if r.category_id not in layout.categories:
            raise BadSampleError(f'annotation {r.ann_id} has unknown category_id {r.category_id!r}',
                                 kind='missing reference')
        category = layout.categories[r.category_id]
        same = sum(a['category'] == category for a in image_anns)
        return [dict(key=rec_key(r.image['id'], r.ref_id, sent_id), img_id=r.image['id'], ref_id=r.ref_id,
                     sent_id=sent_id, expression=text, img_path=osp.join(img_prefix, r.image['file_name']),
                     height=r.height, width=r.width, gt_bbox=r.box, category=category,
                     image_anns=image_anns, needs_reasoning=same > 1)
                for sent_id, text in r.sentences]

    return parse_with_policy(layout.refs_of(split), records_of, bad_samples or BadSamplePolicy('raise'),
                             layout.refs_file, describe_ref)


def split_names(data_root: str, dataset: str = 'refcoco', split_by: str = 'unc') -> List[str]:
    """Split names present in ``refs(<split_by>).p`` (sorted)."""
    return read_refer(data_root, dataset, split_by).split_names()


__all__ = ['load_refer_records', 'rec_key', 'split_names']
