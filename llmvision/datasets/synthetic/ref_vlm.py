"""Synthetic REF-VLM conversations (LLaVA json + per-``<REF>`` targets) from the synthetic grounding scenes.

Task kinds (``question_type``) and their deterministic answers (triplet grammar of REFERENCE.md section 7,
written here as text so this module does not import the model package)::

    rec   "<image>\\nWhere is {expression}?"              <Phrase>{expression}</Phrase>(<Unit>box</Unit>[0]<REF>)
    det   "<image>\\nFind every {category}."               <Phrase>{category}</Phrase>(<Unit>box</Unit>[0]<REF>...)
                                                          or "None." when the category is absent
    gcap  "<image>\\nDescribe the image with boxes."       one triplet per category present, joined by ", "
    kpt   "<image>\\nFind the keypoints of every {category}."  <Phrase>{category}</Phrase>(<Unit>keypoint</Unit>...)

Targets of a category are ordered left to right (then top to bottom). Keypoints are the shapes' vertices,
``K`` per shape kind (:data:`KEYPOINTS_PER_SHAPE`: circle 4 extreme points, square 4 corners, triangle 3
corners, star 5 tips), padded to :data:`NUM_KEYPOINTS` with ``v = 0``; a vertex whose pixels are covered
by a shape drawn later is marked occluded (``v = 1``), else visible (``v = 2``).

Files under ``<root>/ref_vlm/``: ``train.json``, ``val.json`` (records ``{"id", "image", "question_type",
"conversations", "ref_targets": [{"box": [x1, y1, x2, y2], "keypoints": [[x, y, v] * K]?}, ...] (one per
<REF>, pixels), "height", "width"}`` plus ``gt_bbox`` / ``split`` (rec), ``category`` and ``eval_image_id``
(det, kpt)), and the COCO ground truth of the val questions: ``val_det_coco.json`` (one pseudo image per det
question: that category's boxes) and ``val_kpt_coco.json`` (one pseudo image per kpt question, category
``shape`` with :data:`NUM_KEYPOINTS` keypoints). Deterministic per seed.
"""
import json
import math
import os
import pickle
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

import numpy as np
from PIL import Image

from .vocabulary import COLOURS, SHAPES, category_names

NUM_KEYPOINTS = 5
KEYPOINTS_PER_SHAPE: Dict[str, int] = {'circle': 4, 'square': 4, 'triangle': 3, 'star': 5}
QUESTION_TYPES = ('rec', 'det', 'gcap', 'kpt')
REC_Q = '<image>\nWhere is {}?'
DET_Q = '<image>\nFind every {}.'
GCAP_Q = '<image>\nDescribe the image with boxes.'
KPT_Q = '<image>\nFind the keypoints of every {}.'
NONE_ANSWER = 'None.'


def triplet_text(phrase: str, unit: str, n: int) -> str:
    """``<Phrase>phrase</Phrase>(<Unit>unit</Unit>[0]<REF>...)`` (same text as the model's serializer)."""
    return f'<Phrase>{phrase}</Phrase>(<Unit>{unit}</Unit>' + ''.join(f'[{i}]<REF>' for i in range(n)) + ')'


def shape_vertices(shape: str, box: Sequence[float]) -> List[Tuple[float, float]]:
    """Vertices (pixels) of ``shape`` drawn with tight box ``box`` (xyxy, x2/y2 exclusive)."""
    x1, y1, x2, y2 = (float(v) for v in box)
    cx, cy = (x1 + x2) / 2, (y1 + y2) / 2
    if shape == 'circle':
        return [(cx, y1), (x2, cy), (cx, y2), (x1, cy)]
    if shape == 'square':
        return [(x1, y1), (x2, y1), (x2, y2), (x1, y2)]
    if shape == 'triangle':
        return [(cx, y1), (x2, y2), (x1, y2)]
    if shape == 'star':  # tips at -90 + 72k degrees; width = 2 r cos 18, top tip at y1
        r = (x2 - x1) / (2 * math.cos(math.radians(18)))
        c_y = y1 + r
        return [(cx + r * math.cos(math.radians(-90 + 72 * k)), c_y + r * math.sin(math.radians(-90 + 72 * k)))
                for k in range(5)]
    raise ValueError(f'unknown shape {shape!r}; expected one of {SHAPES}')


def vertex_visible(image: np.ndarray, colour: str, point: Tuple[float, float], centre: Tuple[float, float]) -> bool:
    """Whether the shape's colour shows in the 3x3 pixels just inside ``point`` (towards ``centre``)."""
    h, w = image.shape[:2]
    dx, dy = centre[0] - point[0], centre[1] - point[1]
    norm = max(1e-6, math.hypot(dx, dy))
    px = int(round(point[0] + 2.0 * dx / norm - 0.5))
    py = int(round(point[1] + 2.0 * dy / norm - 0.5))
    win = image[max(0, py - 1):min(h, py + 2), max(0, px - 1):min(w, px + 2)].reshape(-1, 3)
    return bool((win == np.asarray(COLOURS[colour], dtype=image.dtype)).all(-1).any())


def keypoints_of(image: np.ndarray, category: str, box: Sequence[float]) -> List[List[float]]:
    """``NUM_KEYPOINTS`` ``[x, y, v]`` of one object (pixels; unused slots ``[0, 0, 0]``)."""
    colour, shape = category.split(' ')
    x1, y1, x2, y2 = box
    centre = ((x1 + x2) / 2, (y1 + y2) / 2)
    out = [[round(x, 2), round(y, 2), 2 if vertex_visible(image, colour, (x, y), centre) else 1]
           for x, y in shape_vertices(shape, box)]
    return out + [[0.0, 0.0, 0]] * (NUM_KEYPOINTS - len(out))


def _by_position(instances: List[Dict]) -> List[Dict]:
    return sorted(instances, key=lambda o: (o['bbox'][0], o['bbox'][1]))


def _record(rid: str, line: Dict, qtype: str, question: str, answer: str, targets: List[Dict], **extra) -> Dict:
    rec = {'id': rid, 'image': line['filename'], 'question_type': qtype,
           'conversations': [{'from': 'human', 'value': question}, {'from': 'gpt', 'value': answer}],
           'ref_targets': targets, 'height': line['height'], 'width': line['width']}
    rec.update(extra)
    return rec


def _image_questions(line: Dict, image: np.ndarray, rng: np.random.Generator, split: str, absent_det: int,
                     counter: Dict[str, int]) -> List[Dict]:
    """det / gcap / kpt questions of one image."""
    out = []
    stem = line['filename'].rsplit('.', 1)[0]
    by_cat: Dict[str, List[Dict]] = {}
    for inst in line['detection']['instances']:
        by_cat.setdefault(inst['category'], []).append(inst)
    names = category_names()
    absent = [c for c in names if c not in by_cat]
    asked = sorted(by_cat) + [absent[i] for i in rng.choice(len(absent), size=min(absent_det, len(absent)),
                                                            replace=False)]
    for cat in asked:
        insts = _by_position(by_cat.get(cat, []))
        answer = triplet_text(cat, 'box', len(insts)) if insts else NONE_ANSWER
        counter['det'] += 1
        out.append(_record(f'{stem}_det_{cat.replace(" ", "_")}', line, 'det', DET_Q.format(cat), answer,
                           [{'box': i['bbox']} for i in insts], category=cat, eval_image_id=counter['det']))
    if by_cat:
        cats = [c for c in names if c in by_cat]
        answer = ', '.join(triplet_text(c, 'box', len(by_cat[c])) for c in cats) + '.'
        targets = [{'box': i['bbox']} for c in cats for i in _by_position(by_cat[c])]
        out.append(_record(f'{stem}_gcap', line, 'gcap', GCAP_Q, answer, targets))
        for cat in sorted(by_cat):
            insts = _by_position(by_cat[cat])
            counter['kpt'] += 1
            out.append(_record(f'{stem}_kpt_{cat.replace(" ", "_")}', line, 'kpt', KPT_Q.format(cat),
                               triplet_text(cat, 'keypoint', len(insts)),
                               [{'box': i['bbox'], 'keypoints': keypoints_of(image, cat, i['bbox'])} for i in insts],
                               category=cat, eval_image_id=counter['kpt']))
    return out


def _rec_questions(refs: List[Dict], boxes: Dict[int, List[float]], lines: Dict[str, Dict]) -> List[Dict]:
    out = []
    for ref in refs:
        line = lines[ref['file_name']]
        box = boxes[ref['ann_id']]
        stem = line['filename'].rsplit('.', 1)[0]
        for s in ref['sentences']:
            expr = s['sent']
            out.append(_record(f'{stem}_rec_{s["sent_id"]}', line, 'rec', REC_Q.format(expr),
                               triplet_text(expr, 'box', 1), [{'box': box}], gt_bbox=box, split=ref['split']))
    return out


def _coco_det(records: List[Dict]) -> Dict:
    images, anns = [], []
    names = category_names()
    for r in records:
        images.append({'id': r['eval_image_id'], 'file_name': r['image'], 'height': r['height'], 'width': r['width']})
        for t in r['ref_targets']:
            x1, y1, x2, y2 = t['box']
            anns.append({'id': len(anns) + 1, 'image_id': r['eval_image_id'],
                         'category_id': names.index(r['category']) + 1, 'bbox': [x1, y1, x2 - x1, y2 - y1],
                         'area': (x2 - x1) * (y2 - y1), 'iscrowd': 0})
    return {'images': images, 'annotations': anns,
            'categories': [{'id': i + 1, 'name': n} for i, n in enumerate(names)]}


def _coco_kpt(records: List[Dict]) -> Dict:
    images, anns = [], []
    for r in records:
        images.append({'id': r['eval_image_id'], 'file_name': r['image'], 'height': r['height'], 'width': r['width']})
        for t in r['ref_targets']:
            x1, y1, x2, y2 = t['box']
            kps = [v for kp in t['keypoints'] for v in kp]
            anns.append({'id': len(anns) + 1, 'image_id': r['eval_image_id'], 'category_id': 1,
                         'bbox': [x1, y1, x2 - x1, y2 - y1], 'area': (x2 - x1) * (y2 - y1), 'iscrowd': 0,
                         'keypoints': kps, 'num_keypoints': sum(1 for kp in t['keypoints'] if kp[2] > 0)})
    return {'images': images, 'annotations': anns,
            'categories': [{'id': 1, 'name': 'shape', 'keypoints': [f'v{i}' for i in range(NUM_KEYPOINTS)],
                            'skeleton': []}]}


def _write_json(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(obj), encoding='utf-8')
    os.replace(tmp, path)


def make_ref_vlm_set(root: Union[str, os.PathLike], seed: int = 0, absent_det: int = 1) -> Dict[str, Path]:
    """Write the REF-VLM conversations of the synthetic set under ``root`` (made by ``make_synthetic_dataset``).

    Reads ``odvg/{split}_detection.jsonl``, ``refcoco/refcoco/refs(unc).p``, ``refcoco/refcoco/instances.json``
    and the images. ``absent_det``: per image, this many det questions about absent categories.
    Returns ``{'train', 'val', 'val_det_coco', 'val_kpt_coco'}`` paths.
    """
    root = Path(root)
    refs_path = root / 'refcoco' / 'refcoco' / 'refs(unc).p'
    for p in (root / 'odvg' / 'train_detection.jsonl', refs_path):
        if not p.is_file():
            raise FileNotFoundError(f'make_ref_vlm_set: {p} not found; generate the synthetic set first '
                                    '(tools/make_synthetic_dataset.py)')
    with open(refs_path, 'rb') as f:
        refs = pickle.load(f)
    inst = json.loads((root / 'refcoco' / 'refcoco' / 'instances.json').read_text(encoding='utf-8'))
    boxes = {a['id']: [a['bbox'][0], a['bbox'][1], a['bbox'][0] + a['bbox'][2], a['bbox'][1] + a['bbox'][3]]
             for a in inst['annotations']}
    out = {}
    for code, split in enumerate(('train', 'val')):
        lines = [json.loads(s) for s in (root / 'odvg' / f'{split}_detection.jsonl').read_text().splitlines() if s]
        by_file = {ln['filename']: ln for ln in lines}
        rng = np.random.default_rng([seed, 7, code])
        counter = {'det': 0, 'kpt': 0}
        records: List[Dict] = []
        for ln in lines:
            image = np.asarray(Image.open(root / 'images' / ln['filename']).convert('RGB'))
            records += _image_questions(ln, image, rng, split, absent_det, counter)
        split_refs = [r for r in refs if (r['split'] == 'train') == (split == 'train')]
        records += _rec_questions(split_refs, boxes, by_file)
        records.sort(key=lambda r: r['id'])
        out[split] = root / 'ref_vlm' / f'{split}.json'
        _write_json(out[split], records)
        if split == 'val':
            out['val_det_coco'] = root / 'ref_vlm' / 'val_det_coco.json'
            _write_json(out['val_det_coco'], _coco_det([r for r in records if r['question_type'] == 'det']))
            out['val_kpt_coco'] = root / 'ref_vlm' / 'val_kpt_coco.json'
            _write_json(out['val_kpt_coco'], _coco_kpt([r for r in records if r['question_type'] == 'kpt']))
    return out
