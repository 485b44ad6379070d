"""tools/test.py and dist_test.sh: metrics, --out predictions and --show-dir drawings; two CPU
processes give exactly the single-process metrics and predictions (no duplicates from the
distributed sampler's padding: 7 images over 2 ranks)."""
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'
REF_CONFIG = ROOT / 'configs/grounding_dino/grounding_dino_tiny_synthetic_refcoco.py'


def _opts(data, refcoco=False):
    # batch 1: padding to a batch shape would make 1- and 2-process numbers differ slightly
    opts = [f'model.text_encoder.tokenizer={data.bert_tokenizer}', 'test_dataloader.dataset.indices=7',
            'test_dataloader.batch_size=1']
    if refcoco:
        opts.append(f'test_dataloader.dataset.data_root={data.refcoco_root}')
    else:
        opts += [f'test_dataloader.dataset.data_root={data.root}/',
                 f'test_evaluator.ann_file={data.lvis_val}']
    return ['--cfg-options', *opts]


def _env(port):
    env = dict(os.environ, PORT=str(port), OMP_NUM_THREADS='1')
    env.pop('LOCAL_RANK', None)
    return env


def _run(cmd, port=29800):
    res = subprocess.run([str(c) for c in cmd], cwd=ROOT, env=_env(port), capture_output=True,
                         text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res.stdout + res.stderr


def _metrics(log: str) -> dict:
    return {k: float(v) for k, v in re.findall(r'((?:lvis_fixed_ap|refexp)/[\w/@]+): (-?[0-9.]+)', log)}


@pytest.fixture(scope='module')
def trained(synthetic_data, tmp_path_factory):
    """A checkpoint after 40 training iterations (non-trivial predictions)."""
    work = tmp_path_factory.mktemp('train')
    _run([sys.executable, ROOT / 'tools/train.py', CONFIG, '--work-dir', work, '--no-validate',
          '--cfg-options', f'model.text_encoder.tokenizer={synthetic_data.bert_tokenizer}',
          f'train_dataloader.dataset.data_root={synthetic_data.root}/', 'train_cfg.max_iters=40',
          'default_hooks.checkpoint.interval=40'])
    return work / 'iter_40.pth'


@pytest.mark.slow
def test_single_vs_two_process_test_identical(synthetic_data, trained, tmp_path):
    single, dist = tmp_path / 'single.json', tmp_path / 'dist.json'
    log1 = _run([sys.executable, ROOT / 'tools/test.py', CONFIG, trained, '--work-dir', tmp_path / 'w1',
                 '--out', single, '--show-dir', 'vis', *_opts(synthetic_data)])
    log2 = _run(['bash', ROOT / 'dist_test.sh', CONFIG, trained, '2', '--work-dir', tmp_path / 'w2',
                 '--out', dist, *_opts(synthetic_data)], port=29811)
    m1, m2 = _metrics(log1), _metrics(log2)
    assert 'lvis_fixed_ap/AP50' in m1 and m1 == m2
    p1, p2 = json.loads(single.read_text()), json.loads(dist.read_text())
    key = lambda d: (d['image_id'], d['category_id'], d['score'], tuple(d['bbox']))  # noqa: E731
    assert sorted(p1, key=key) == sorted(p2, key=key)
    assert len({d['image_id'] for d in p1}) == 7
    gt = json.loads(Path(synthetic_data.lvis_val).read_text())
    assert {d['category_id'] for d in p1} <= {c['id'] for c in gt['categories']}
    drawn = list((tmp_path / 'w1' / 'vis').glob('*.png'))
    assert len(drawn) == 7


@pytest.mark.slow
def test_refcoco_single_vs_two_process(synthetic_data, trained, tmp_path):
    log1 = _run([sys.executable, ROOT / 'tools/test.py', REF_CONFIG, trained, '--work-dir', tmp_path / 'w1',
                 *_opts(synthetic_data, refcoco=True)])
    log2 = _run(['bash', ROOT / 'dist_test.sh', REF_CONFIG, trained, '2', '--work-dir', tmp_path / 'w2',
                 *_opts(synthetic_data, refcoco=True)], port=29821)
    m1, m2 = _metrics(log1), _metrics(log2)
    assert 'refexp/val/P@1' in m1 and m1 == m2
    assert 0.0 <= m1['refexp/val/P@1'] <= m1['refexp/val/P@5'] <= m1['refexp/val/P@10'] <= 1.0


def test_test_tool_bad_input(tmp_path):
    res = subprocess.run([sys.executable, str(ROOT / 'tools/test.py'), str(CONFIG), str(tmp_path / 'no.pth')],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and 'checkpoint not found' in res.stderr
    bad_cfg = tmp_path / 'bad.py'
    bad_cfg.write_text('model = dict(type=1\n')
    res = subprocess.run([sys.executable, str(ROOT / 'tools/train.py'), str(bad_cfg)], cwd=ROOT,
                         capture_output=True, text=True, timeout=300)
    assert res.returncode != 0 and 'bad.py' in res.stderr and 'syntax error' in res.stderr
