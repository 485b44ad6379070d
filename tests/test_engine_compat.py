"""The mmengine-on-current-torch traps, each shown failing without our patch and fixed with it."""
import io
import os
import pickle

import pytest
import torch
from torch import nn

import llmvision  # noqa: F401  (installs the patches)
from llmvision.utils import compat


class _Evil:
    """An object whose unpickling runs code (what a hostile checkpoint would contain)."""

    def __reduce__(self):
        return (os.system, ('echo pwned > /dev/null',))


def _mmengine_like_checkpoint():
    import numpy as np
    from mmengine.logging import MessageHub
    hub = MessageHub.get_instance('compat_test')
    hub.update_scalar('train/loss', 1.5)
    hub.update_scalar('train/loss', np.float64(1.25))
    return dict(meta=dict(epoch=1, iter=10, seed=42, np_value=np.float32(0.5),
                          arr=np.arange(3)),
                state_dict=dict(w=torch.ones(2)), message_hub=hub.state_dict(),
                optimizer=dict(state={}, param_groups=[dict(lr=0.1, params=[0])]))


def test_plain_torch_load_rejects_mmengine_checkpoint_without_patch(tmp_path):
    """The trap: torch>=2.6 weights_only unpickler refuses mmengine's HistoryBuffer."""
    path = tmp_path / 'ckpt.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    saved = list(torch.serialization.get_safe_globals())
    torch.serialization.clear_safe_globals()
    try:
        with pytest.raises(Exception, match='HistoryBuffer|Unsupported global|weights_only'):
            torch.load(path)
    finally:
        torch.serialization.add_safe_globals(saved)


def test_mmengine_load_checkpoint_of_runner_state(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'ckpt.pth'
    torch.save(_mmengine_like_checkpoint(), path)
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['meta']['iter'] == 10
    assert torch.equal(ckpt['state_dict']['w'], torch.ones(2))
    assert 'log_scalars' in ckpt['message_hub']


def test_untrusted_pickle_is_refused_with_clear_error(tmp_path, monkeypatch):
    from mmengine.runner.checkpoint import _load_checkpoint
    path = tmp_path / 'evil.pth'
    torch.save(dict(state_dict={}, payload=_Evil()), path)
    monkeypatch.delenv(compat.TRUST_ENV, raising=False)
    with pytest.raises(RuntimeError) as err:
        _load_checkpoint(str(path), map_location='cpu')
    assert str(path) in str(err.value) and compat.TRUST_ENV in str(err.value)
    # the user can opt in for files they trust
    monkeypatch.setenv(compat.TRUST_ENV, '1')
    ckpt = _load_checkpoint(str(path), map_location='cpu')
    assert ckpt['payload'] == 0  # os.system's exit status: the pickle ran


def test_missing_checkpoint_names_the_file(tmp_path):
    from mmengine.runner.checkpoint import _load_checkpoint
    with pytest.raises(FileNotFoundError, match='nope.pth'):
        _load_checkpoint(str(tmp_path / 'nope.pth'))


def test_package_helpers_work_without_pkg_resources():
    import mmengine.config.config as config_mod
    from mmengine.utils import get_installed_path, is_installed
    try:
        import pkg_resources  # noqa: F401
        has_pkg_resources = True
    except ImportError:
        has_pkg_resources = False
    assert is_installed('numpy') and is_installed('mmengine')
    assert not is_installed('surely-not-a-real-package-xyz')
    assert os.path.isfile(os.path.join(get_installed_path('mmengine'), '__init__.py'))
    assert compat.package2module('opencv-python-headless') == 'cv2'
    # mmengine.config imported the names directly: they must be ours too
    assert config_mod.get_installed_path is compat.get_installed_path
    assert config_mod.is_installed is compat.is_installed
    if not has_pkg_resources:  # the trap is real on this setuptools
        from importlib import import_module
        with pytest.raises(ImportError):
            import_module('pkg_resources')


def test_config_absolute_read_base_from_installed_package(tmp_path):
    """``with read_base(): from <package>.x import *`` resolves through get_installed_path."""
    from mmengine.config import Config
    pkg = tmp_path / 'cfgpkg_llmv'
    (pkg / 'base').mkdir(parents=True)
    (pkg / '__init__.py').write_text('')
    (pkg / 'base' / '__init__.py').write_text('')
    (pkg / 'base' / 'runtime.py').write_text('lr = 0.5\nname = "base"\n')
    cfg_file = tmp_path / 'child.py'
    cfg_file.write_text('from mmengine.config import read_base\nwith read_base():\n'
                        '    from cfgpkg_llmv.base.runtime import *\nlr = lr * 2\n')
    import sys
    sys.path.insert(0, str(tmp_path))
    try:
        cfg = Config.fromfile(str(cfg_file))
    finally:
        sys.path.remove(str(tmp_path))
    assert cfg.lr == 1.0 and cfg.name == 'base'


def test_local_writes_are_atomic(tmp_path, monkeypatch):
    from mmengine.fileio.backends.local_backend import LocalBackend
    target = tmp_path / 'last_checkpoint'
    backend = LocalBackend()
    backend.put_text('iter_10.pth', target)
    assert target.read_text() == 'iter_10.pth'

    def crash(*args, **kwargs):
        raise KeyboardInterrupt('killed during save')

    monkeypatch.setattr(compat.os, 'replace', crash)
    with pytest.raises(KeyboardInterrupt):
        backend.put(b'x' * 1000, target)
    monkeypatch.undo()
    assert target.read_text() == 'iter_10.pth'  # old content intact
    assert [p.name for p in tmp_path.iterdir()] == ['last_checkpoint']  # no temp litter


def test_bf16_optim_wrapper_steps_bf16_weights_on_cpu():
    from mmengine.optim import OptimWrapper

    from llmvision.engine import BF16OptimWrapper
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(8, 16), nn.GELU(), nn.Linear(16, 1)).to(torch.bfloat16)
    x = torch.randn(64, 8)
    y = x.sum(1, keepdim=True)
    wrapper = BF16OptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.05),
                               clip_grad=dict(max_norm=1.0))
    assert isinstance(wrapper, OptimWrapper)
    losses = []
    for _ in range(30):
        with wrapper.optim_context(model):
            out = model(x)
            assert out.dtype == torch.bfloat16
            loss = (out.float() - y).pow(2).mean()
        wrapper.update_params(loss)
        losses.append(loss.item())
    assert losses[-1] < 0.5 * losses[0]
    assert all(p.dtype == torch.bfloat16 for p in model.parameters())


def test_bf16_autocast_of_fp32_model_on_cpu():
    from llmvision.engine import BF16OptimWrapper
    model = nn.Linear(4, 4)
    wrapper = BF16OptimWrapper(optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.bfloat16
    wrapper_off = BF16OptimWrapper(autocast=False, optimizer=torch.optim.SGD(model.parameters(), lr=0.1))
    with wrapper_off.optim_context(model):
        assert model(torch.randn(2, 4)).dtype == torch.float32


def test_rng_state_roundtrip_is_weights_only_loadable(tmp_path):
    import random

    import numpy as np

    from llmvision.engine.hooks import capture_rng_state, restore_rng_state
    torch.manual_seed(3)
    np.random.seed(3)
    random.seed(3)
    state = capture_rng_state()
    expect = (torch.rand(3), np.random.rand(3), random.random())
    buf = io.BytesIO()
    torch.save(dict(rng_state=state), buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=True)['rng_state']
    torch.manual_seed(99)
    np.random.seed(99)
    random.seed(99)
    restore_rng_state(loaded)
    got = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(expect[0], got[0]) and np.array_equal(expect[1], got[1])
    assert expect[2] == got[2]


def test_private_rng_isolates_pipeline_from_global_stream():
    import numpy as np

    from llmvision.utils import PrivateRNG
    torch.manual_seed(0)
    rng = PrivateRNG()
    np.random.seed(5)
    with rng:
        a = np.random.rand()
    model_draw_1 = np.random.rand()
    # a second run where the "model" drew extra numbers in between still gets the same pipeline draw
    torch.manual_seed(0)
    rng2 = PrivateRNG()
    np.random.seed(5)
    np.random.rand(17)
    with rng2:
        b = np.random.rand()
    assert a == b
    np.random.seed(5)
    assert np.random.rand() == model_draw_1  # the global stream did not move inside the block


def test_pickle_module_is_not_patched_globally():
    # our allow-list must not make plain pickle.loads of arbitrary objects "safe"
    data = pickle.dumps(dict(a=1))
    assert pickle.loads(data) == dict(a=1)
