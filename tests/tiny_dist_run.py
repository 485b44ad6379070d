"""Run ``dist_train.sh`` on the tiny synthetic Grounding-DINO for 3 iterations (CPU, gloo) and
read the logged losses: shared by the DeepSpeed and FSDP tests."""
import json
import os
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'


def tiny_dist_train(data, work_dir, nproc: int, extra, port: int, cfg_options=(), env=None):
    """Returns ``{step: loss}``; asserts the run exits 0 (its output tail in the message)."""
    cmd = ['bash', str(ROOT / 'dist_train.sh'), str(CONFIG), str(nproc), '--work-dir', str(work_dir),
           '--no-validate', *extra, '--cfg-options',
           f'train_dataloader.dataset.data_root={data.root}/',
           f'model.text_encoder.tokenizer={data.bert_tokenizer}',
           'train_dataloader.batch_size=2', 'train_dataloader.dataset.pipeline.3.scales=[128,144]',
           'train_dataloader.dataset.pipeline.3.max_long_side=200', 'train_cfg.max_iters=3',
           'train_cfg.val_interval=4', 'default_hooks.logger.interval=1',
           'default_hooks.checkpoint.interval=3', *cfg_options]
    run_env = dict(os.environ, PORT=str(port), OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1',
                   **(env or {}))
    run_env.pop('LOCAL_RANK', None)
    res = subprocess.run(cmd, cwd=ROOT, env=run_env, capture_output=True, text=True, timeout=400)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    losses = {}
    for scalars in Path(work_dir).glob('*/vis_data/scalars.json'):
        for line in scalars.read_text().splitlines():
            rec = json.loads(line)
            if 'loss' in rec:
                losses[rec['step']] = rec['loss']
    return losses
