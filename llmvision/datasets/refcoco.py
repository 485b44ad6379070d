"""Referring-expression datasets: refer layout (RefCOCO/+/g) and MDETR-style json.

Each sample is one expression: ``text`` = the expression, one gt box (label 0),
``tokens_positive = [[[0, len(text)]]]`` (the whole expression names the box),
``custom_entities=False``. Boxes are COCO ``[x, y, w, h]`` in the json, pixel xyxy in the data info.
"""
import json
import os.path as osp
import pickle
from typing import Dict, List

from mmengine.fileio import get_local_path

from ..registry import DATASETS
from .annotation_checks import check_image_size, check_spans, check_text, check_xywh_box
from .bad_samples import BadSampleError
from .base import GroundingBaseDataset

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
        folder = osp.join(self.data_root, self.dataset_name)
        inst_file = osp.join(folder, 'instances.json')
        refs_file = osp.join(folder, f'refs({self.split_by}).p')
        for path in (inst_file, refs_file):
            if not osp.isfile(path):
                raise FileNotFoundError(f'{path} not found (refer layout: <data_root>/<dataset>/instances.json '
                                        f'and refs(<split_by>).p)')
        instances = _load_json(inst_file)
        images = {img['id']: img for img in instances.get('images', [])}
        anns = {ann['id']: ann for ann in instances.get('annotations', [])}
        with open(refs_file, 'rb') as f:
            try:
                refs = pickle.load(f)
            except Exception as e:  # noqa: BLE001  (any unpickling failure)
                raise BadSampleError(f'cannot unpickle refs: {type(e).__name__}: {e}', source=refs_file) from None
        known = {r.get('split') for r in refs}
        if self.split not in known:
            raise ValueError(f'split {self.split!r} not in {refs_file} (splits there: {sorted(map(str, known))})')
        data_list = []
        for i, ref in enumerate(refs):
            if ref.get('split') != self.split:
                continue
            try:
                data_list.extend(self._parse_ref(ref, images, anns))
            except BadSampleError as error:
                self._bad_sample(BadSampleError(f"ref #{i} (ref_id {ref.get('ref_id')!r}): {error.reason}"),
                                 refs_file)
        return data_list

    def _parse_ref(self, ref: dict, images: Dict[int, dict], anns: Dict[int, dict]) -> List[dict]:
        if ref.get('ann_id') not in anns:
            raise BadSampleError(f"ann_id {ref.get('ann_id')!r} is not in instances.json")
        if ref.get('image_id') not in images:
            raise BadSampleError(f"image_id {ref.get('image_id')!r} is not in instances.json")
        img = images[ref['image_id']]
        height, width = check_image_size(img)
        box = check_xywh_box(anns[ref['ann_id']].get('bbox'), height, width, key=f"annotation {ref['ann_id']} bbox")
        out = []
        for j, sent in enumerate(ref.get('sentences', [])):
            text = check_text(sent.get('sent'), key=f'sentences[{j}].sent')
            out.append(dict(img_path=osp.join(self.img_prefix, img['file_name']), img_id=img['id'],
                            height=height, width=width, text=text, custom_entities=False,
                            tokens_positive=[[[0, len(text)]]],
                            instances=[dict(bbox=box, bbox_label=0, ignore_flag=0)],
                            ref_id=ref.get('ref_id'), ann_id=ref['ann_id'], sent_id=sent.get('sent_id', j),
                            ori_gt_bboxes=[box], split=self.split))
        if not out:
            raise BadSampleError('ref has no sentences')
        return out


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
        data_list = []
        for img in raw.get('images', []):
            try:
                data_list.append(self._parse_image(img, anns_by_img.get(img.get('id'), [])))
            except BadSampleError as error:
                self._bad_sample(BadSampleError(f"image id {img.get('id')!r}: {error.reason}"), self.ann_file)
        return data_list

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
