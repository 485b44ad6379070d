"""Synthetic dataset: determinism, images and boxes, ODVG grounding/detection lines, the CLI tool."""
import hashlib
import json
import re
import runpy
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from llmvision.datasets.synthetic import SyntheticPaths, make_synthetic_dataset
from llmvision.datasets.synthetic.vocabulary import COLOURS, NUMBER_WORDS, category_names

ROOT = Path(__file__).resolve().parents[1]


def _read_jsonl(path):
    with open(path, encoding='utf-8') as f:
        return [json.loads(line) for line in f]


def _digest_tree(root: Path):
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob('*')) if p.is_file()}


def test_deterministic_per_seed_and_different_across_seeds(tmp_path):
    kw = dict(num_train=5, num_val=3, image_size=(96, 128))
    a = make_synthetic_dataset(tmp_path / 'a', seed=7, **kw)
    b = make_synthetic_dataset(tmp_path / 'b', seed=7, **kw)
    c = make_synthetic_dataset(tmp_path / 'c', seed=8, **kw)
    da, db, dc = _digest_tree(a.root), _digest_tree(b.root), _digest_tree(c.root)
    assert da == db, 'same seed must give byte-identical files'
    assert len(da) > 20
    assert da.keys() == dc.keys()
    changed = {k for k in da if da[k] != dc[k]}
    assert any(k.startswith('images/') for k in changed)
    assert str(Path('odvg') / 'train_grounding.jsonl') in changed
    # tokenizers do not depend on the seed
    assert not any(k.startswith(('bert_tokenizer', 'llm_tokenizer')) for k in changed)
    assert Image.open(a.image_dir / 'train_000000.png').size == (128, 96)


def test_paths_and_summary(synthetic_data):
    p = synthetic_data
    assert isinstance(p, SyntheticPaths)
    for name in ('root', 'image_dir', 'train_odvg', 'val_odvg', 'train_det_odvg', 'val_det_odvg', 'label_map',
                 'lvis_train', 'lvis_val', 'refcoco_root', 'bert_tokenizer', 'llm_tokenizer'):
        assert isinstance(getattr(p, name), Path), name
        assert getattr(p, name).exists(), name
    assert (p.refcoco_root / 'refcoco' / 'instances.json').is_file()
    assert (p.refcoco_root / 'refcoco' / 'refs(unc).p').is_file()
    assert p.categories == category_names() and len(p.categories) == 24
    assert json.loads(p.label_map.read_text()) == {str(i): n for i, n in enumerate(p.categories)}
    text = p.summary()
    assert '24 images' in text and '8 images' in text and 'r=' in text
    assert SyntheticPaths.at(p.root).train_odvg == p.train_odvg


def test_bad_arguments_raise(tmp_path):
    with pytest.raises(ValueError, match='num_train'):
        make_synthetic_dataset(tmp_path, num_train=0, num_val=1)
    with pytest.raises(ValueError, match='image_size'):
        make_synthetic_dataset(tmp_path, num_train=1, num_val=1, image_size=(32, 320))
    with pytest.raises(ValueError, match='max_objects'):
        make_synthetic_dataset(tmp_path, num_train=1, num_val=1, max_objects=7)
    with pytest.raises(ValueError, match='backgrounds'):
        make_synthetic_dataset(tmp_path, num_train=1, num_val=1, backgrounds=['photo', 'sky'])
    with pytest.raises(ValueError, match='category distribution'):
        make_synthetic_dataset(tmp_path, num_train=1, num_val=1, categories='pareto')


def test_vqa_profile_uniform_categories_plain_backgrounds(tmp_path):
    """The VQA it-learns profile: every category about equally frequent (no rare band, so the question text
    cannot predict the answer), only plain / gradient backgrounds, at most ``max_objects`` per scene."""
    p = make_synthetic_dataset(tmp_path, seed=1, num_train=150, num_val=4, image_size=(64, 64),
                               categories='uniform', backgrounds=['plain', 'gradient'], max_objects=4)
    counts = {}
    for line in _read_jsonl(p.train_det_odvg):
        assert len(line['detection']['instances']) <= 4
        for inst in line['detection']['instances']:
            counts[inst['category']] = counts.get(inst['category'], 0) + 1
    assert len(counts) == len(p.categories)  # no category capped away
    assert max(counts.values()) < 0.1 * sum(counts.values())  # uniform: ~4%; Zipf 1.2 over 24: ~30%
    # plain / gradient backgrounds are smooth: neighbouring background pixels differ by a few levels at most
    # (noise backgrounds jump by ~18 per cell, photos far more)
    shape_rgb = np.array(list(COLOURS.values()), np.int16)
    for line in _read_jsonl(p.train_det_odvg)[:40]:
        img = np.asarray(Image.open(p.image_dir / line['filename']).convert('RGB'), np.int16)
        bg = ~(img[:, :, None, :] == shape_rgb[None, None]).all(-1).any(-1)
        pair = bg[:, 1:] & bg[:, :-1]
        assert np.abs(img[:, 1:] - img[:, :-1]).max(-1)[pair].max() <= 8, line['filename']


def _colour_mask(img: np.ndarray, colour: str) -> np.ndarray:
    return (img == np.array(COLOURS[colour], np.uint8)).all(-1)


@pytest.mark.parametrize('split', ['train', 'val'])
def test_boxes_inside_and_tight_to_drawn_pixels(synthetic_data, split):
    lines = _read_jsonl(getattr(synthetic_data, f'{split}_det_odvg'))
    names = synthetic_data.categories
    checked = 0
    for line in lines:
        img = np.asarray(Image.open(synthetic_data.image_dir / line['filename']).convert('RGB'))
        h, w = img.shape[:2]
        assert (line['height'], line['width']) == (h, w)
        for inst in line['detection']['instances']:
            x1, y1, x2, y2 = inst['bbox']
            assert 0 <= x1 < x2 <= w and 0 <= y1 < y2 <= h, (line['filename'], inst)
            assert all(float(v).is_integer() for v in inst['bbox'])
            x1, y1, x2, y2 = map(int, inst['bbox'])
            assert names[inst['label']] == inst['category']
            colour = inst['category'].split(' ')[0]
            mask = _colour_mask(img, colour)
            inside = mask[y1:y2, x1:x2]
            # visible fill: >= 30% of the box (a star fills ~40%, at most 10% may be covered)
            assert inside.mean() >= 0.3, (line['filename'], inst, inside.mean())
            # tight: the drawn pixels reach (nearly) every side of the box ...
            ys, xs = np.nonzero(inside)
            bw, bh = x2 - x1, y2 - y1
            assert xs.min() <= 0.1 * bw and xs.max() >= 0.9 * bw - 1
            assert ys.min() <= 0.1 * bh and ys.max() >= 0.9 * bh - 1
            # ... and nothing of this colour touches the box from outside (same colours keep a gap)
            ring = mask[max(y1 - 1, 0):y2 + 1, max(x1 - 1, 0):x2 + 1].sum() - inside.sum()
            assert ring == 0, (line['filename'], inst)
            checked += 1
    assert checked > 0


def test_odvg_grounding_lines(synthetic_data):
    for split in ('train', 'val'):
        ground = _read_jsonl(getattr(synthetic_data, f'{split}_odvg'))
        det = _read_jsonl(getattr(synthetic_data, f'{split}_det_odvg'))
        assert len(ground) == len(det) == (24 if split == 'train' else 8)
        for g, d in zip(ground, det):
            assert g['filename'] == d['filename']
            assert (synthetic_data.image_dir / g['filename']).is_file()
            cap = g['grounding']['caption']
            assert cap.endswith('.')
            grounded = []
            for reg in g['grounding']['regions']:
                assert reg['tokens_positive'], reg
                for s, e in reg['tokens_positive']:
                    assert 0 <= s < e <= len(cap)
                    assert cap[s:e] == reg['phrase'], (cap, reg)
                    assert (s == 0 or not cap[s - 1].isalnum()) and (e == len(cap) or not cap[e].isalnum())
                boxes = reg['bbox'] if isinstance(reg['bbox'][0], list) else [reg['bbox']]
                if len(boxes) > 1:  # plural phrase preceded by its count word
                    before = cap[:reg['tokens_positive'][0][0]].split()
                    assert before[-1] == NUMBER_WORDS[len(boxes)] and reg['phrase'].endswith('s')
                grounded += [tuple(b) for b in boxes]
            det_boxes = [tuple(i['bbox']) for i in d['detection']['instances']]
            assert sorted(grounded) == sorted(det_boxes)
            conv = g['conversations']
            assert [c['from'] for c in conv] == ['human', 'gpt']
            assert conv[0]['value'] == '<image>\nDescribe the image in detail.'
            assert len(conv[1]['value']) > len(cap) or not det_boxes
            assert g['tags'] == sorted({i['category'] for i in d['detection']['instances']})
            for inst in d['detection']['instances']:
                assert inst['category'] in conv[1]['value']


def test_zero_object_images_and_variety(synthetic_data):
    for split in ('train', 'val'):
        ground = _read_jsonl(getattr(synthetic_data, f'{split}_odvg'))
        det = _read_jsonl(getattr(synthetic_data, f'{split}_det_odvg'))
        empty = [i for i, d in enumerate(det) if not d['detection']['instances']]
        assert empty, f'{split}: no zero-object image'
        for i in empty:
            assert ground[i]['grounding']['regions'] == []
            assert 'no shapes' in ground[i]['conversations'][1]['value']
    det = _read_jsonl(synthetic_data.train_det_odvg)
    counts = [len(d['detection']['instances']) for d in det]
    assert max(counts) >= 4 and max(counts) <= 6
    dup = sum(len({i['label'] for i in d['detection']['instances']}) < len(d['detection']['instances'])
              for d in det)
    assert dup >= 4, 'images with repeated categories are needed for reasoning expressions'
    descs = ' '.join(g['conversations'][1]['value'] for g in _read_jsonl(synthetic_data.train_odvg))
    for kind in ('plain', 'gradient', 'noisy', 'photo'):
        assert kind in descs, kind


def test_descriptions_state_true_positions(synthetic_data):
    pat = re.compile(r'An? (small|medium|large) ([a-z]+ [a-z]+) is in the ([a-z ]+?) of the image\.')
    ground = _read_jsonl(synthetic_data.train_odvg)
    det = _read_jsonl(synthetic_data.train_det_odvg)
    seen = 0
    for g, d in zip(ground, det):
        h, w = g['height'], g['width']
        cells = {}
        for inst in d['detection']['instances']:
            x1, y1, x2, y2 = inst['bbox']
            row = ('top', 'middle', 'bottom')[min(int(3 * (y1 + y2) / 2 / h), 2)]
            col = ('left', 'middle', 'right')[min(int(3 * (x1 + x2) / 2 / w), 2)]
            cell = 'center' if row == col == 'middle' else f'{row} {col}'
            cells.setdefault(inst['category'], []).append(cell)
        for _, name, where in pat.findall(g['conversations'][1]['value']):
            assert where in cells[name], (g['filename'], name, where, cells[name])
            seen += 1
    assert seen == sum(len(d['detection']['instances']) for d in det)


def test_cli_tool_prints_summary(tmp_path, capsys):
    mod = runpy.run_path(str(ROOT / 'tools' / 'make_synthetic_dataset.py'), run_name='synthetic_tool')
    mod['main'](['--out', str(tmp_path / 'set'), '--seed', '3', '--num-train', '3', '--num-val', '2',
                 '--image-size', '80', '96'])
    out = capsys.readouterr().out
    assert 'train: 3 images' in out and 'val: 2 images' in out
    assert (tmp_path / 'set' / 'odvg' / 'train_grounding.jsonl').is_file()
