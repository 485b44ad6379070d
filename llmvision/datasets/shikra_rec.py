"""Shikra-style REC jsonl (``REC_refcoco_unc_val.jsonl``, ...) as REF-VLM conversations, so real RefCOCO / + / g
evaluation files load.

One json object per line: ``{"img_path": "COCO_train2014_000000xxxxxx.jpg", "expression": "...", "bbox": [x1, y1,
x2, y2], "height"?: h, "width"?: w, "dataset_name"?: "refcoco"}`` (pixel xyxy; the size is read from the image
header when absent). Each line becomes ``<image>\\n{question}`` -> ``<Phrase>{expression}</Phrase>(<Unit>box
</Unit>[0]<REF>)`` with one box target (``gt_bbox`` for :class:`RefExpMetric`), through
:class:`RefVLMJsonDataset`.
"""
import json
import os.path as osp

from PIL import Image

from ..registry import DATASETS
from .bad_samples import BadSampleError
from .ref_vlm_json import RefVLMJsonDataset

REC_QUESTION = '<image>\nWhere is {}?'


@DATASETS.register_module()
class ShikraRECDataset(RefVLMJsonDataset):
    """Shikra REC jsonl reader (module docstring).

    Args:
        question: the user turn, ``{}`` = the expression.
        split: ``split`` metainfo of every sample (RefExpMetric's key; e.g. ``'val'``, ``'testA'``).
        other arguments: :class:`RefVLMJsonDataset` (``data_prefix=dict(img='data/coco/train2014/')``).
    """

    METAINFO = dict(dataset_name='shikra_rec')

    def __init__(self, *args, question: str = REC_QUESTION, split: str = 'val', **kwargs):
        self.question, self.split = question, split
        super().__init__(*args, **kwargs)

    def _to_record(self, line: dict, idx: int) -> dict:
        for key in ('img_path', 'expression', 'bbox'):
            if key not in line:
                raise ValueError(f'missing key {key!r}')
        box = [float(v) for v in line['bbox']]
        if len(box) != 4 or box[2] < box[0] or box[3] < box[1]:
            raise ValueError(f'"bbox" must be pixel [x1, y1, x2, y2], got {line["bbox"]!r}')
        h, w = line.get('height'), line.get('width')
        if not (isinstance(h, int) and isinstance(w, int)):
            path = osp.join(self.img_prefix, line['img_path'])
            if not osp.isfile(path):
                raise ValueError(f'image file {path!r} not found (and no "height"/"width" given)')
            with Image.open(path) as im:
                w, h = im.size
        expr = ' '.join(str(line['expression']).split())
        answer = f'<Phrase>{expr}</Phrase>(<Unit>box</Unit>[0]<REF>)'
        return {'id': line.get('id', idx), 'image': line['img_path'], 'question_type': 'rec',
                'conversations': [{'from': 'human', 'value': self.question.format(expr)},
                                  {'from': 'gpt', 'value': answer}],
                'ref_targets': [{'box': box}], 'height': h, 'width': w, 'gt_bbox': box, 'split': self.split}

    def load_data_list(self):
        if not osp.isfile(self.ann_file):
            raise FileNotFoundError(f'Shikra REC jsonl {self.ann_file!r} not found: put the file there (e.g. '
                                    'REC_refcoco_unc_val.jsonl from the Shikra data release)')
        with open(self.ann_file, encoding='utf-8') as f:
            lines = [(i, t) for i, t in enumerate(f) if t.strip()]
        infos = []
        for idx, text in lines:
            try:
                infos.append(self._parse_line(text, idx))
            except BadSampleError as error:
                self._bad_sample(error, self.ann_file)
        return infos

    def _parse_line(self, text: str, idx: int) -> dict:
        """One jsonl line -> data info (raises BadSampleError naming the line)."""
        try:
            line = json.loads(text)
            if not isinstance(line, dict):
                raise ValueError('a line must be a json object')
            rec = self._to_record(line, idx)
        except ValueError as e:  # json.JSONDecodeError is a ValueError
            raise BadSampleError(f'line {idx + 1}: {e}', source=self.ann_file) from None
        return self._check_record(rec, idx)
