"""LVIS v1 json -> one data info per image, prompted with every category name.

``text`` is the list of all category names in category-id order (``custom_entities=True``),
``bbox_label`` is the category's position in that order; ``cat_ids[label]`` / ``cat2label[cat_id]``
map between the two for the metric. ``neg_category_ids`` and ``not_exhaustive_category_ids``
(category ids, as in the json) are kept per image. Image files: ``file_name`` when present, else
the path part of ``coco_url`` (``train2017/000000391895.jpg``), joined to ``data_prefix['img']``.
Boxes are COCO ``[x, y, w, h]``: partly outside -> clipped, degenerate/fully outside -> bad sample.
"""
import json
import os.path as osp
from typing import Dict, List

from mmengine.fileio import get_local_path

from ..registry import DATASETS
from .annotation_checks import check_image_size, check_text, check_xywh_box
from .bad_samples import BadSampleError, describe_image
from .base import GroundingBaseDataset


def lvis_image_file(img: dict) -> str:
    """Relative image path of an LVIS/COCO image entry."""
    if img.get('file_name'):
        return img['file_name']
    url = img.get('coco_url')
    if not url:
        raise BadSampleError(f"image {img.get('id')!r} has neither 'file_name' nor 'coco_url'")
    parts = url.rstrip('/').split('/')
    return '/'.join(parts[-2:])


@DATASETS.register_module()
class LVISDataset(GroundingBaseDataset):
    """LVIS v1 detection dataset for open-vocabulary evaluation/training.

    Args:
        ann_file: LVIS json (e.g. ``lvis_v1_minival.json``).
        data_prefix: ``dict(img=coco_root)``.
        on_bad_sample / max_bad_samples / **kwargs: see :class:`GroundingBaseDataset`.

    Attributes:
        cat_ids: category id of each label, ``[C]`` in id order.
        cat2label: ``{category_id: label}``.
        class_names: names in label order (also ``metainfo['classes']``).
    """

    def __init__(self, ann_file: str, data_prefix: dict = dict(img=''), **kwargs):
        self.cat_ids: List[int] = []
        self.cat2label: Dict[int, int] = {}
        self.class_names: List[str] = []
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        with get_local_path(self.ann_file) as path, open(path) as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as e:
                raise BadSampleError(f'not valid json: {e}', source=self.ann_file) from None
        for key in ('images', 'annotations', 'categories'):
            if not isinstance(raw.get(key), list):
                raise BadSampleError(f'key {key!r} missing or not a list', source=self.ann_file)
        cats = sorted(raw['categories'], key=lambda c: c['id'])
        self.cat_ids = [c['id'] for c in cats]
        self.cat2label = {cid: i for i, cid in enumerate(self.cat_ids)}
        self.class_names = [check_text(c.get('name'), key=f"categories[id={c['id']}].name") for c in cats]
        self._metainfo['classes'] = tuple(self.class_names)
        self._metainfo['cat_ids'] = tuple(self.cat_ids)

        anns_by_img: Dict[int, list] = {}
        for ann in raw['annotations']:
            anns_by_img.setdefault(ann.get('image_id'), []).append(ann)
        return self.parse_entries(raw['images'], lambda img: self._parse_image(img, anns_by_img.get(img.get('id'), [])),
                                  self.ann_file, describe_image)

    def _parse_image(self, img: dict, anns: list) -> dict:
        height, width = check_image_size(img)
        instances = []
        for ann in anns:
            key = f"annotation id {ann.get('id')!r}"
            cat = ann.get('category_id')
            if cat not in self.cat2label:
                raise BadSampleError(f'{key}: category_id {cat!r} is not in categories', kind='missing reference')
            box = check_xywh_box(ann.get('bbox'), height, width, key=f'{key} bbox')
            instances.append(dict(bbox=box, bbox_label=self.cat2label[cat], ignore_flag=0))
        return dict(img_path=osp.join(self.img_prefix, lvis_image_file(img)), img_id=img['id'],
                    height=height, width=width, text=list(self.class_names), custom_entities=True,
                    tokens_positive=None, instances=instances,
                    neg_category_ids=list(img.get('neg_category_ids', [])),
                    not_exhaustive_category_ids=list(img.get('not_exhaustive_category_ids', [])))
