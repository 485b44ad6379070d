"""ODVG jsonl dataset (one image per line), grounding and detection forms.

Grounding line (REFERENCE.md section 2)::

    {"filename", "height", "width",
     "grounding": {"caption", "regions": [{"bbox": [x1,y1,x2,y2] or [[...], ...], "phrase",
                                           "tokens_positive": [[start, end], ...]}]},
     "conversations": [{"from": "human", ...}, {"from": "gpt", "value": long caption}]}

-> ``text`` = caption, region ``i`` = label ``i`` (every box of a plural region gets label ``i``),
``tokens_positive[i]`` = the region's spans, ``phrases[i]`` = its phrase, ``long_caption`` = the
gpt turn (for the captioner; absent when the line has no conversations).

Detection line: ``{"filename", "height", "width", "detection": {"instances": [{"bbox", "label",
"category"}]}}`` plus ``label_map_file`` (json ``{"0": "person", ...}``) -> ``text`` = the names in
label order, ``bbox_label`` = position of the label in the map, ``custom_entities=True``.

Both forms: an optional ``"tags": [str, ...]`` list is kept as ``tags``. Caption targets are cleaned
as LLMDet does (switches restore the raw text): the long caption by
:func:`.caption_cleaning.remove_speculative_clauses` (the raw caption when nothing is left), the
region phrases by :func:`.caption_cleaning.clean_phrase`.
"""
import json
import os.path as osp
from typing import List, Optional

from mmengine.fileio import get_local_path

from ..registry import DATASETS
from .annotation_checks import check_image_size, check_spans, check_text, check_xyxy_box
from .bad_samples import BadSampleError
from .base import GroundingBaseDataset
from .caption_cleaning import clean_phrase, remove_speculative_clauses


def _long_caption(conversations) -> Optional[str]:
    """The first ``gpt`` turn's text, or None."""
    if conversations is None:
        return None
    if not isinstance(conversations, list):
        raise BadSampleError(f'conversations must be a list, got {type(conversations).__name__}')
    for turn in conversations:
        if isinstance(turn, dict) and turn.get('from') == 'gpt':
            return check_text(turn.get('value'), key='conversations[gpt].value')
    return None


@DATASETS.register_module()
class ODVGDataset(GroundingBaseDataset):
    """ODVG jsonl grounding/detection dataset.

    Args:
        ann_file: the jsonl file.
        label_map_file: json label map; given -> detection form, else grounding form.
        data_prefix: ``dict(img=folder)``; ``filename`` is joined to it.
        clean_caption: clean the long caption with ``remove_speculative_clauses`` (LLMDet: on).
        clean_region_phrases: clean region phrases with ``clean_phrase`` (LLMDet: on).
        on_bad_sample / max_bad_samples: see :class:`GroundingBaseDataset`.
        **kwargs: mmengine ``BaseDataset`` arguments.
    """

    def __init__(self, ann_file: str, label_map_file: Optional[str] = None, data_root: str = '',
                 data_prefix: dict = dict(img=''), clean_caption: bool = True,
                 clean_region_phrases: bool = True, **kwargs):
        self.clean_caption = clean_caption
        self.clean_region_phrases = clean_region_phrases
        if label_map_file and data_root and not osp.isabs(label_map_file):
            label_map_file = osp.join(data_root, label_map_file)
        self.label_map_file = label_map_file
        self.label_names: Optional[List[str]] = None
        self.label_ids: Optional[List[str]] = None
        super().__init__(ann_file=ann_file, data_root=data_root, data_prefix=data_prefix, **kwargs)

    # ---------------------------------------------------------------- loading
    def _load_label_map(self) -> None:
        with get_local_path(self.label_map_file) as path, open(path) as f:
            try:
                raw = json.load(f)
            except json.JSONDecodeError as e:
                raise BadSampleError(f'not valid json: {e}', source=self.label_map_file) from None
        if not isinstance(raw, dict) or not raw:
            raise BadSampleError('label map must be a non-empty {"id": "name"} object',
                                 source=self.label_map_file)
        try:
            ids = sorted(raw, key=int)
        except ValueError:
            raise BadSampleError(f'label map keys must be integers, got {list(raw)[:5]}',
                                 source=self.label_map_file) from None
        self.label_ids = [str(int(k)) for k in ids]
        self.label_names = [check_text(raw[k], key=f'label map[{k}]') for k in ids]
        self._metainfo['classes'] = tuple(self.label_names)
        self._metainfo['cat_ids'] = tuple(int(k) for k in ids)

    def load_data_list(self) -> List[dict]:
        if self.label_map_file:
            self._load_label_map()
        data_list = []
        with get_local_path(self.ann_file) as path, open(path, encoding='utf-8') as f:
            for line_no, line in enumerate(f, start=1):
                if not line.strip():
                    continue
                try:
                    try:
                        record = json.loads(line)
                    except json.JSONDecodeError as e:
                        raise BadSampleError(f'malformed json: {e.msg} (col {e.colno})') from None
                    if not isinstance(record, dict):
                        raise BadSampleError(f'a line must be a json object, got {type(record).__name__}')
                    data_list.append(self.parse_record(record, line_no))
                except BadSampleError as error:
                    self._bad_sample(error, self.ann_file, line_no)
        return data_list

    def parse_record(self, record: dict, line_no: int) -> dict:
        """One jsonl object -> data info (raises :class:`BadSampleError`)."""
        filename = record.get('filename')
        if not isinstance(filename, str) or not filename:
            raise BadSampleError(f"key 'filename' missing or not a string: {filename!r}")
        height, width = check_image_size(record)
        info = dict(img_path=osp.join(self.img_prefix, filename), img_id=line_no - 1,
                    height=height, width=width)
        if self.label_names is not None:
            if 'detection' not in record:
                raise BadSampleError("label_map_file given but the line has no 'detection' key")
            info.update(self._parse_detection(record['detection'], height, width))
        else:
            if 'grounding' not in record:
                raise BadSampleError("no 'grounding' key (detection lines need label_map_file)")
            info.update(self._parse_grounding(record['grounding'], height, width))
            long_caption = _long_caption(record.get('conversations'))
            if long_caption is not None:
                cleaned = remove_speculative_clauses(long_caption) if self.clean_caption else long_caption
                info['long_caption'] = cleaned or long_caption
            if self.clean_region_phrases:
                info['phrases'] = [clean_phrase(p) or p for p in info['phrases']]
        tags = record.get('tags', [])
        if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
            raise BadSampleError(f"'tags' must be a list of strings, got {tags!r}")
        info['tags'] = list(tags)
        return info

    def _parse_detection(self, det, height: int, width: int) -> dict:
        if not isinstance(det, dict) or not isinstance(det.get('instances', []), list):
            raise BadSampleError("'detection' must be {'instances': [...]}")
        label_index = {k: i for i, k in enumerate(self.label_ids)}
        instances = []
        for j, inst in enumerate(det.get('instances', [])):
            key = f'detection.instances[{j}]'
            label = inst.get('label')
            try:
                label_key = str(int(label))
            except (TypeError, ValueError):
                raise BadSampleError(f'{key}.label must be an integer, got {label!r}') from None
            if label_key not in label_index:
                raise BadSampleError(f'{key}.label {label!r} is not in the label map {self.label_map_file}')
            index = label_index[label_key]
            category = inst.get('category')
            if category is not None and str(category).strip().lower() != self.label_names[index].strip().lower():
                raise BadSampleError(f'{key}.category {category!r} disagrees with the label map name '
                                     f'{self.label_names[index]!r} for label {label!r}')
            box = check_xyxy_box(inst.get('bbox'), height, width, key=f'{key}.bbox')
            instances.append(dict(bbox=box, bbox_label=index, ignore_flag=0))
        return dict(text=list(self.label_names), custom_entities=True, tokens_positive=None,
                    instances=instances)

    def _parse_grounding(self, grounding, height: int, width: int) -> dict:
        if not isinstance(grounding, dict):
            raise BadSampleError("'grounding' must be an object")
        caption = check_text(grounding.get('caption'), key='grounding.caption')
        regions = grounding.get('regions', [])
        if not isinstance(regions, list):
            raise BadSampleError('grounding.regions must be a list')
        instances, tokens_positive, phrases = [], [], []
        for i, region in enumerate(regions):
            key = f'grounding.regions[{i}]'
            if not isinstance(region, dict):
                raise BadSampleError(f'{key} must be an object')
            spans = check_spans(region.get('tokens_positive'), caption, key=f'{key}.tokens_positive')
            boxes = region.get('bbox')
            if isinstance(boxes, (list, tuple)) and boxes and isinstance(boxes[0], (list, tuple)):
                box_list = boxes
            else:
                box_list = [boxes]
            for b, box in enumerate(box_list):
                box = check_xyxy_box(box, height, width, key=f'{key}.bbox[{b}]')
                instances.append(dict(bbox=box, bbox_label=i, ignore_flag=0))
            tokens_positive.append(spans)
            phrase = region.get('phrase')
            phrases.append(phrase if isinstance(phrase, str) else
                           ' '.join(caption[s:e] for s, e in spans))
        return dict(text=caption, custom_entities=False, tokens_positive=tokens_positive,
                    phrases=phrases, instances=instances)
