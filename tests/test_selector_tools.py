"""tools/rec_candidates.py (resumable cache) and tools/rec_eval.py (accuracy tables)."""
import argparse
import importlib.util
import json
import os.path as osp

import pytest
import torch

from llmvision.datasets.rec import build_selector_samples, load_refer_records
from llmvision.evaluation import accuracy_table, format_table, rec_accuracy
from llmvision.models.selectors import BoxListPromptSerializer
from llmvision.structures import CandidateSet

ROOT = osp.dirname(osp.dirname(osp.abspath(__file__)))


def _tool(name):
    spec = importlib.util.spec_from_file_location(name, osp.join(ROOT, 'tools', f'{name}.py'))
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_rec_accuracy_rules():
    gt = [[0., 0., 10., 10.]] * 3
    half = torch.tensor([0., 0., 10., 5.])  # IoU exactly 0.5
    out = rec_accuracy([torch.tensor([0., 0., 10., 10.]), half, None], gt)
    assert out == dict(accuracy=pytest.approx(1 / 3), hits=1, total=3, no_box=1)
    assert rec_accuracy([half], gt[:1], inclusive=True)['hits'] == 1
    assert rec_accuracy([half], gt[:1], iou_thr=0.4)['hits'] == 1
    with pytest.raises(ValueError):
        rec_accuracy([half], gt)


def test_candidates_tool_resumes(synthetic_data, tmp_path):
    tool = _tool('rec_candidates')
    out = str(tmp_path / 'c' / 'val.jsonl')
    common = ['synthetic', '--data-root', str(synthetic_data.refcoco_root), '--split', 'val',
              '--out', out]
    first = tool.main(common + ['--max-records', '5'])
    assert first == dict(done=5, skipped=0)
    with open(out, 'a') as f:
        f.write('{"key": "broken')  # killed mid-line
    second = tool.main(common)
    n = len(load_refer_records(str(synthetic_data.refcoco_root), split='val'))
    assert second == dict(done=n - 5, skipped=5)
    lines = [json.loads(x) for x in open(out)]
    assert len(lines) == n and len({x['key'] for x in lines}) == n
    assert tool.main(common) == dict(done=0, skipped=n)


def test_eval_tool_table(synthetic_data, tmp_path):
    tool = _tool('rec_eval')
    cand = str(tmp_path / 'c_{split}.jsonl')
    _tool('rec_candidates').main(['synthetic', '--data-root', str(synthetic_data.refcoco_root),
                                  '--split', 'val', '--out', cand.replace('{split}', 'val')])
    md = str(tmp_path / 'table.md')
    tables = tool.main(['--data-root', str(synthetic_data.refcoco_root), '--splits', 'val',
                        '--candidates', f'det={cand}', 'syn=synthetic', '--ensemble', 'det+syn',
                        '--out', md])
    rows = {r['method']: r for r in tables['val'][0]}
    assert set(rows) == {'detector-only (det)', 'oracle (det)', 'detector-only (syn)',
                         'oracle (syn)', 'detector-only (det+syn)', 'oracle (det+syn)'}
    # the cached file and the live source give the same candidates
    assert rows['oracle (det)']['hits'] == rows['oracle (syn)']['hits']
    assert rows['oracle (det)']['accuracy'] > 0.95  # every GT object is a candidate
    assert rows['detector-only (det)']['accuracy'] < rows['oracle (det)']['accuracy']
    assert '| oracle (det+syn) |' in open(md).read()


def test_accuracy_table_with_a_selector_method(synthetic_data):
    records = load_refer_records(str(synthetic_data.refcoco_root), split='val')
    source = lambda r: CandidateSet(  # noqa: E731  (GT box second, a wrong box first)
        'fixed', torch.tensor([[0., 0., 5., 5.], r['gt_bbox']]), ['x', 'y'], [0.9, 0.1])
    samples, _ = build_selector_samples(records, [source], BoxListPromptSerializer(), train=False)
    second = lambda ss: [s['candidates'][0].bboxes[1] for s in ss]  # noqa: E731
    rows = accuracy_table(samples, {'pick-second': second, 'nothing': lambda ss: [None] * len(ss)})
    assert rows[0]['accuracy'] == 1.0 and rows[1]['no_box'] == len(samples)
    n_hard = sum(r['needs_reasoning'] for r in records)
    assert rows[0]['reasoning_total'] == n_hard
    text = format_table('val', rows)
    assert '| pick-second | 100.0 |' in text and 'IoU > 0.5' in text


def test_eval_tool_rejects_unknown_ensemble(synthetic_data):
    tool = _tool('rec_eval')
    args = argparse.Namespace(data_root=str(synthetic_data.refcoco_root), dataset='refcoco',
                              split_by='unc', splits=['val'], img_prefix=None,
                              candidates=['a=synthetic'], ensemble=['a+b'], iou_thr=0.5,
                              inclusive=False, batch_size=4, max_records=None)
    with pytest.raises(KeyError, match="'b'"):
        tool.split_tables(args)
