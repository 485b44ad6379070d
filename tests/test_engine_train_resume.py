"""tools/train.py and dist_train.sh end to end: checkpoints, and a run killed with SIGKILL then
restarted with ``--resume`` reproduces the uninterrupted run's losses at the following steps.

The tiny synthetic Grounding-DINO config is used with small images; denoising noise, dropout-free
layers and random flips/resizes all draw random numbers, so equality needs the RNG state hook and
the datasets' private RNG stream.
"""
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'
MAX_ITERS, CKPT_EVERY = 6, 3


def _options(data, extra=()):
    return ['--cfg-options',
            f'train_dataloader.dataset.data_root={data.root}/',
            f'model.text_encoder.tokenizer={data.bert_tokenizer}',
            'train_dataloader.batch_size=2',
            'train_dataloader.dataset.pipeline.3.scales=[128,144]',
            'train_dataloader.dataset.pipeline.3.max_long_side=200',
            f'train_cfg.max_iters={MAX_ITERS}', f'train_cfg.val_interval={MAX_ITERS + 1}',
            'default_hooks.logger.interval=1',
            f'default_hooks.checkpoint.interval={CKPT_EVERY}',
            'default_hooks.checkpoint.max_keep_ckpts=5', *extra]


def _command(data, work_dir, launcher, resume=False):
    args = [str(CONFIG), '--work-dir', str(work_dir), '--no-validate'] + (['--resume'] if resume else [])
    args += _options(data)
    if launcher == 'none':
        return [sys.executable, str(ROOT / 'tools/train.py'), *args]
    return ['bash', str(ROOT / 'dist_train.sh'), args[0], '2', *args[1:]]


def _env(port):
    env = dict(os.environ, PORT=str(port), OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('LOCAL_RANK', None)
    return env


def _losses(work_dir: Path) -> dict:
    """iter -> loss from every run's vis_data/scalars.json in the work dir (later runs win)."""
    out = {}
    for scalars in sorted(work_dir.glob('*/vis_data/scalars.json')):
        for line in scalars.read_text().splitlines():
            rec = json.loads(line)
            if 'loss' in rec:
                out[rec['step']] = rec['loss']
    return out


def _run(cmd, port, timeout=600):
    res = subprocess.run(cmd, cwd=ROOT, env=_env(port), capture_output=True, text=True, timeout=timeout)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    return res


def _run_and_kill_after_checkpoint(cmd, port, work_dir: Path, timeout=600):
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_env(port), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, start_new_session=True)
    marker = work_dir / 'last_checkpoint'
    start = time.time()
    try:
        while not marker.exists():
            assert proc.poll() is None, 'training exited before writing a checkpoint'
            assert time.time() - start < timeout, 'no checkpoint in time'
            time.sleep(0.2)
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # the whole process group: torchrun and its workers
        proc.wait()


@pytest.mark.slow
@pytest.mark.parametrize('launcher,port', [('none', 29611), ('pytorch', 29631)])
def test_sigkill_then_resume_matches_uninterrupted(synthetic_data, tmp_path, launcher, port):
    full, cut = tmp_path / 'full', tmp_path / 'cut'
    _run(_command(synthetic_data, full, launcher), port)
    ref = _losses(full)
    assert sorted(ref) == list(range(1, MAX_ITERS + 1))
    assert (full / f'iter_{MAX_ITERS}.pth').exists()

    _run_and_kill_after_checkpoint(_command(synthetic_data, cut, launcher), port + 1, cut)
    last = (cut / 'last_checkpoint').read_text().strip()
    assert last.endswith(f'iter_{CKPT_EVERY}.pth') and Path(last).exists()
    assert not list(cut.glob('.*.tmp'))  # no half-written checkpoint left behind

    _run(_command(synthetic_data, cut, launcher, resume=True), port + 2)
    got = _losses(cut)
    assert (cut / f'iter_{MAX_ITERS}.pth').exists()
    for step in range(CKPT_EVERY + 1, MAX_ITERS + 1):
        assert got[step] == pytest.approx(ref[step], rel=1e-5, abs=1e-6), (step, got, ref)
    # the losses of the resumed steps are not trivially equal to each other
    assert len({round(ref[s], 6) for s in range(1, MAX_ITERS + 1)}) > 1


def test_amp_bf16_through_train_tool(synthetic_data, tmp_path):
    """``--amp bf16`` selects BF16OptimWrapper (no grad scaler) and trains on CPU."""
    cmd = [sys.executable, str(ROOT / 'tools/train.py'), str(CONFIG), '--work-dir', str(tmp_path),
           '--no-validate', '--amp', 'bf16', *_options(synthetic_data)]
    cmd[cmd.index(f'train_cfg.max_iters={MAX_ITERS}')] = 'train_cfg.max_iters=2'
    _run(cmd, 29651)
    dumped = next(tmp_path.glob('*.py')).read_text()
    assert "type='BF16OptimWrapper'" in dumped
    assert sorted(_losses(tmp_path)) == [1, 2]
