"""Referring-expression datasets: refer layout (RefCOCO/+/g, read by :mod:`.refer`) and MDETR-style json.

Each sample is one expression: ``text`` = the expression, one gt box (label 0),
``tokens_positive = [[[0, len(text)]]]`` (the whole expression names the box),
``custom_entities=False``. Boxes are COCO ``[x, y, w, h]`` in the json, pixel xyxy in the data info.
"""
import json
import os.path as osp
from typing import Dict, List

from mmengine.fileio import get_local_path

from ..registry import DATASETS
from .annotation_checks import check_image_size, check_spans, check_text, check_xywh_box
from .bad_samples import BadSampleError, describe_image
from .base import GroundingBaseDataset
from .refer import ReferLayout, describe_ref, parse_ref, read_refer

SPLITS = {'refcoco': ('train', 'val', 'testA', 'testB'), 'refcoco+': ('train', 'val', 'testA', 'testB'),
          'refcocog': ('train', 'val', 'test')}


def _load_json(path: str) -> dict:
    with get_local_path(path) as local, open(local) as f:
        try:
            return json.load(f)
        except json.JSONDecodeError as e:
            raise BadSampleError(f'not valid json: {e}', source=path) from None


@DATASETS.register_module()
class RefCOCODataset(GroundingBaseDataset):
    """RefCOCO / RefCOCO+ / RefCOCOg in the refer layout.

    Reads ``<data_root>/<dataset>/instances.json`` and ``<data_root>/<dataset>/refs(<split_by>).p``;
    keeps the refs of ``split``; one data info per sentence (extra keys ``ori_gt_bboxes`` (the gt box
    in original pixels, for RefExpMetric), ``split``, ``ref_id``, ``ann_id``,
    ``sent_id``). Images: ``data_prefix['img']`` (relative to ``data_root``) + the image ``file_name``.

    Args:
        data_root: folder holding ``<dataset>/``.
        dataset: ``'refcoco'``, ``'refcoco+'`` or ``'refcocog'``.
        split_by: ``'unc'``, ``'umd'`` or ``'google'``.
        split: e.g. ``'val'``, ``'testA'``.
        data_prefix: ``dict(img=...)``, e.g. ``dict(img='train2014/')``.
    """

    def __init__(self, data_root: str, dataset: str = 'refcoco', split_by: str = 'unc', split: str = 'val',
                 data_prefix: dict = dict(img=''), **kwargs):
        self.dataset_name = dataset
        self.split_by = split_by
        self.split = split
        super().__init__(ann_file='', data_root=data_root, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        layout = read_refer(self.data_root, self.dataset_name, self.split_by)
        return self.parse_entries(layout.refs_of(self.split), lambda entry: self._data_infos(layout, entry[1]),
                                  layout.refs_file, describe_ref)

    def _data_infos(self, layout: ReferLayout, ref: dict) -> List[dict]:
        """One data info per sentence of a valid ref."""
        r = parse_ref(layout, ref)
        img_path = osp.join(self.img_prefix, r.image['file_name'])
        return [dict(img_path=img_path, img_id=r.image['id'], height=r.height, width=r.width, text=text,
                     custom_entities=False, tokens_positive=[[[0, len(text)]]],
                     instances=[dict(bbox=r.box, bbox_label=0, ignore_flag=0)], ref_id=r.ref_id,
                     ann_id=r.ann_id, sent_id=sent_id, ori_gt_bboxes=[r.box], split=self.split)
                for sent_id, text in r.sentences]


@DATASETS.register_module()
class MDETRRefDataset(GroundingBaseDataset):
    """MDETR-style json (``finetune_refcoco_val.json``): one image entry per expression.

    Each ``images`` entry carries ``caption`` (the expression); its annotations carry ``bbox``
    (xywh) and ``tokens_positive`` (spans in the caption). Annotation ``k`` of an entry is label
    ``k`` with its own spans (whole caption when the annotation has none).
    """

    def __init__(self, ann_file: str, data_prefix: dict = dict(img=''), **kwargs):
        super().__init__(ann_file=ann_file, data_prefix=data_prefix, **kwargs)

    def load_data_list(self) -> List[dict]:
        raw = _load_json(self.ann_file)
        anns_by_img: Dict[int, list] = {}
        for ann in raw.get('annotations', []):
            anns_by_img.setdefault(ann.get('image_id'), []).append(ann)
        return self.parse_entries(raw.get('images', []),
                                  lambda img: self._parse_image(img, anns_by_img.get(img.get('id'), [])),
                                  self.ann_file, describe_image)

    def _parse_image(self, img: dict, anns: list) -> dict:
        height, width = check_image_size(img)
        text = check_text(img.get('caption'), key='caption')
        instances, tokens_positive = [], []
        for k, ann in enumerate(anns):
            key = f"annotation id {ann.get('id')!r}"
            box = check_xywh_box(ann.get('bbox'), height, width, key=f'{key} bbox')
            spans = ann.get('tokens_positive') or [[0, len(text)]]
            tokens_positive.append(check_spans(spans, text, key=f'{key} tokens_positive'))
            instances.append(dict(bbox=box, bbox_label=k, ignore_flag=0))
        if not instances:
            raise BadSampleError('expression has no annotation (box)')
        return dict(img_path=osp.join(self.img_prefix, img['file_name']), img_id=img['id'],
                    height=height, width=width, text=text, custom_entities=False,
                    tokens_positive=tokens_positive, instances=instances,
                    original_id=img.get('original_id'))
