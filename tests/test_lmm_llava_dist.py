"""LLaVAModel under torch FSDP and DeepSpeed ZeRO-3 (one gloo rank on CPU, fresh process each): the same
loss as the plain model (FSDP: the same gradients too), and tensor / generation modes still work with the
wrapped, partitioned parameters. End-to-end --fsdp / --deepspeed launches are covered by tests/test_engine_*."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent


def run_check(mode: str, port: int) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS='1', PYTHONUNBUFFERED='1')
    env.pop('LOCAL_RANK', None)
    res = subprocess.run([sys.executable, str(HERE / 'lmm_dist_check.py'), mode, str(port)], cwd=HERE.parent,
                         env=env, capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stdout[-3000:] + res.stderr[-3000:]
    line = [ln for ln in res.stdout.splitlines() if ln.startswith('RESULT ')][-1]
    return json.loads(line[len('RESULT '):])


@pytest.mark.slow
@pytest.mark.parametrize('mode,port', [('fsdp', 29631), ('zero3', 29632)])
def test_wrapped_model_matches_plain(mode, port):
    out = run_check(mode, port)
    assert abs(out['loss'] - out['ref_loss']) < 1e-5
    if mode == 'fsdp':
        assert out['grad_mismatch'] == [] and out['num_grads'] > 10
    assert len(out['generated']) == 3 and all(len(r) == 3 for r in out['generated'])
    assert out['tensor_shape'][0] == 3
