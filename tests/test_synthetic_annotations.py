"""Synthetic dataset: LVIS json (lvis-api, pycocotools) and RefCOCO refer layout (expressions re-verified)."""
import json
import pickle
import re
from collections import Counter, defaultdict

import numpy as np
import pytest

from llmvision.datasets.synthetic.lvis import frequency_of


@pytest.fixture
def lvis_api(monkeypatch):
    """lvis-api 0.5.3 uses ``np.float`` (removed in numpy 2): shim it for this test only."""
    monkeypatch.setattr(np, 'float', float, raising=False)
    import lvis
    return lvis


def _read_jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def test_lvis_loads_with_lvis_api_and_pycocotools(synthetic_data, lvis_api):
    from pycocotools.coco import COCO
    for split, n in (('train', 24), ('val', 8)):
        path = str(getattr(synthetic_data, f'lvis_{split}'))
        api = lvis_api.LVIS(path)
        assert len(api.get_img_ids()) == n
        assert sorted(api.get_cat_ids()) == list(range(1, 25))
        coco = COCO(path)
        assert len(coco.getImgIds()) == n and len(coco.getAnnIds()) == len(api.get_ann_ids())


def test_lvis_content_matches_detection_lines(synthetic_data):
    train = json.loads(synthetic_data.lvis_train.read_text())
    val = json.loads(synthetic_data.lvis_val.read_text())
    assert train['categories'] == val['categories']
    cats = train['categories']
    assert {c['frequency'] for c in cats} == {'r', 'c', 'f'}, 'category frequencies must be skewed'
    img_count, inst_count = Counter(), Counter()
    per_image = defaultdict(set)
    for a in train['annotations']:
        per_image[a['image_id']].add(a['category_id'])
        inst_count[a['category_id']] += 1
    for s in per_image.values():
        img_count.update(s)
    for c in cats:
        assert c['image_count'] == img_count[c['id']] and c['instance_count'] == inst_count[c['id']]
        assert c['frequency'] == frequency_of(c['image_count'], len(train['images']))
        assert c['name'] == synthetic_data.categories[c['id'] - 1] and c['synonyms']
    ids = [i['id'] for i in train['images'] + val['images']]
    anns = [a['id'] for a in train['annotations'] + val['annotations']]
    assert len(set(ids)) == len(ids) and len(set(anns)) == len(anns)
    for data, split in ((train, 'train'), (val, 'val')):
        det = {d['filename']: d for d in _read_jsonl(getattr(synthetic_data, f'{split}_det_odvg'))}
        by_img = defaultdict(list)
        for a in data['annotations']:
            by_img[a['image_id']].append(a)
        for img in data['images']:
            d = det[img['file_name']]
            got = sorted((a['category_id'] - 1, tuple(a['bbox'])) for a in by_img[img['id']])
            want = sorted((i['label'], (i['bbox'][0], i['bbox'][1], i['bbox'][2] - i['bbox'][0],
                                        i['bbox'][3] - i['bbox'][1])) for i in d['detection']['instances'])
            assert got == want
            present = {a['category_id'] for a in by_img[img['id']]}
            assert img['neg_category_ids'] and not present & set(img['neg_category_ids'])
            assert img['not_exhaustive_category_ids'] == []
            for a in by_img[img['id']]:
                x, y, w, h = a['bbox']
                assert a['area'] == pytest.approx(w * h) and a['iscrowd'] == 0
                assert a['segmentation'] == [[x, y, x + w, y, x + w, y + h, x, y + h]]


def test_lvis_eval_perfect_detections_score_one(synthetic_data, lvis_api):
    gt = lvis_api.LVIS(str(synthetic_data.lvis_val))
    anns = json.loads(synthetic_data.lvis_val.read_text())['annotations']
    dets = [{'image_id': a['image_id'], 'category_id': a['category_id'], 'bbox': a['bbox'], 'score': 0.9}
            for a in anns]
    ev = lvis_api.LVISEval(gt, lvis_api.LVISResults(gt, dets), 'bbox')
    ev.run()
    assert ev.results['AP'] == pytest.approx(1.0)
    # shifting every box by half its width must hurt
    shifted = [dict(d, bbox=[d['bbox'][0] + d['bbox'][2] / 2] + d['bbox'][1:]) for d in dets]
    ev = lvis_api.LVISEval(gt, lvis_api.LVISResults(gt, shifted), 'bbox')
    ev.run()
    assert ev.results['AP'] < 0.5


# ---------------------------------------------------------------- RefCOCO

_NAME = r'([a-z]+ [a-z]+)'
_PATTERNS = [
    ('unique', re.compile(rf'^(?:the )?{_NAME}$')),
    ('first_x', re.compile(rf'^the {_NAME} on the left$|^the leftmost {_NAME}$')),
    ('last_x', re.compile(rf'^the {_NAME} on the right$|^the rightmost {_NAME}$')),
    ('first_y', re.compile(rf'^the upper {_NAME}$|^the {_NAME} at the top$|^the topmost {_NAME}$')),
    ('last_y', re.compile(rf'^the lower {_NAME}$|^the {_NAME} at the bottom$|^the bottom {_NAME}$')),
    ('big', re.compile(rf'^the (?:larger|big|largest) {_NAME}$')),
    ('small', re.compile(rf'^the (?:smaller|little|smallest) {_NAME}$')),
    ('rel', re.compile(rf'^the {_NAME} (?:that is )?(left of|right of|above|below) the {_NAME}$')),
]


def _centre(a):
    x, y, w, h = a['bbox']
    return x + w / 2, y + h / 2


def _verify(expr, target, others):
    """Independent check that ``expr`` is true of ``target`` and of no other object in the image."""
    same = [o for o in others if o['category_id'] == target['category_id']]
    for kind, pat in _PATTERNS:
        m = pat.match(expr)
        if not m:
            continue
        groups = [g for g in m.groups() if g is not None]
        name = groups[0]
        assert name == target['name'], (expr, target['name'])
        if kind == 'unique':
            return not same
        if kind == 'rel':
            rel, ref_name = groups[1], groups[2]
            refs = [o for o in others if o['name'] == ref_name]
            if len(refs) != 1:
                return False
            r = refs[0]
            tx, ty, tw, th = target['bbox']
            rx, ry, rw, rh = r['bbox']
            strict = {'left of': tx + tw <= rx, 'right of': tx >= rx + rw,
                      'above': ty + th <= ry, 'below': ty >= ry + rh}[rel]
            ax = 0 if rel in ('left of', 'right of') else 1
            sign = -1 if rel in ('left of', 'above') else 1
            loose = [sign * (_centre(s)[ax] - _centre(r)[ax]) > 0 for s in same]
            return strict and not any(loose)
        if not same:
            return False
        if expr.startswith('the ') and (' on the ' in expr or expr.split()[1] in (
                'larger', 'smaller', 'big', 'little', 'upper', 'lower')) and len(same) != 1:
            return False  # comparative forms are for exactly two objects
        if kind in ('first_x', 'last_x', 'first_y', 'last_y'):
            ax = 0 if kind.endswith('x') else 1
            sign = 1 if kind.startswith('first') else -1
            return all(sign * (_centre(s)[ax] - _centre(target)[ax]) > 0 for s in same)
        if kind == 'big':
            return all(target['area'] > s['area'] for s in same)
        return all(target['area'] < s['area'] for s in same)
    raise AssertionError(f'expression outside the grammar: {expr!r}')


def test_refcoco_layout_and_expressions(synthetic_data):
    root = synthetic_data.refcoco_root / 'refcoco'
    inst = json.loads((root / 'instances.json').read_text())
    with open(root / 'refs(unc).p', 'rb') as f:
        refs = pickle.load(f)
    assert isinstance(refs, list) and refs
    assert {r['split'] for r in refs} == {'train', 'val', 'testA', 'testB'}
    anns = {a['id']: a for a in inst['annotations']}
    imgs = {i['id']: i for i in inst['images']}
    names = {c['id']: c['name'] for c in inst['categories']}
    by_img = defaultdict(list)
    for a in inst['annotations']:
        by_img[a['image_id']].append(dict(a, name=names[a['category_id']]))
    sent_ids, ref_ids, reasoning = set(), set(), 0
    split_of_image = {}
    for r in refs:
        assert set(r) >= {'ref_id', 'ann_id', 'image_id', 'category_id', 'split', 'file_name', 'sent_ids',
                          'sentences'}
        assert r['ref_id'] not in ref_ids
        ref_ids.add(r['ref_id'])
        ann = anns[r['ann_id']]
        assert ann['image_id'] == r['image_id'] and ann['category_id'] == r['category_id']
        assert imgs[r['image_id']]['file_name'] == r['file_name']
        assert (synthetic_data.image_dir / r['file_name']).is_file()
        assert split_of_image.setdefault(r['image_id'], r['split']) == r['split']
        assert r['sent_ids'] == [s['sent_id'] for s in r['sentences']] and r['sentences']
        target = dict(ann, name=names[ann['category_id']])
        others = [o for o in by_img[r['image_id']] if o['id'] != ann['id']]
        reasoning += any(o['category_id'] == ann['category_id'] for o in others)
        for s in r['sentences']:
            assert s['sent_id'] not in sent_ids
            sent_ids.add(s['sent_id'])
            assert s['tokens'] == s['sent'].split() and s['raw'].lower() == s['sent']
            assert _verify(s['sent'], target, others), (r['file_name'], s['sent'])
    assert reasoning >= 0.25 * len(refs), f'only {reasoning}/{len(refs)} refs need reasoning'
    train_imgs = {i['id'] for i in json.loads(synthetic_data.lvis_train.read_text())['images']}
    assert all((r['split'] == 'train') == (r['image_id'] in train_imgs) for r in refs)
