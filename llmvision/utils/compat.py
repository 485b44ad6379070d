"""Patches that make mmengine 0.10.7 work on current torch and setuptools.

Installed once, when ``llmvision`` is imported (idempotent). Each patch is narrow and tested
in ``tests/test_engine_compat.py``:

1. ``torch.load`` defaults to ``weights_only=True`` since torch 2.6. mmengine checkpoints
   pickle a few non-tensor objects (the message hub's ``HistoryBuffer``, numpy scalars and
   arrays in log buffers, ``ConfigDict`` in metadata), so ``--resume`` failed with
   "Unsupported global". We keep the safe loader and allow-list exactly those types
   (:data:`SAFE_CHECKPOINT_GLOBALS`): arbitrary pickles in untrusted files still do not run.
   ``HistoryBuffer.__getstate__`` also pickled its class-level statistics functions, which
   needs ``builtins.getattr`` (too broad to allow): we drop them from the state (they are
   class attributes and come back on load). Checkpoints written by other mmengine programs
   still contain them; a user who trusts such a file sets ``LLMVISION_TRUSTED_CHECKPOINTS=1``.
   A refused file is reported with the blocked global (torch < 2.14 writes "Unsupported global",
   2.14 "unsupported GLOBAL"), and a file that is no checkpoint at all (a text file given as
   weights) with its name (:func:`check_checkpoint_file`), not the unpickler's "pop from empty list".
2. ``pkg_resources`` is gone from setuptools >= 81. mmengine's ``is_installed``,
   ``get_installed_path`` and ``package2module`` import it (config loading of
   ``package::path`` configs and absolute ``read_base`` imports hit them). We replace them
   with ``importlib.metadata`` versions.
3. Checkpoints must never be half-written: mmengine's ``LocalBackend.put``/``put_text`` write
   in place, so a kill during a save left a truncated ``iter_N.pth`` or an empty
   ``last_checkpoint``. We write to a temporary file in the same folder and ``os.replace``.

4. ``mmengine.dist.init_dist('pytorch')`` always calls ``torch.cuda.set_device``, so a
   torchrun job on a machine without GPUs (CPU/gloo DDP, our tests) dies before it starts. Without
   CUDA we initialise the process group directly (gloo); with CUDA mmengine's code runs unchanged.
   Likewise ``Runner.wrap_model`` passes ``device_ids=[LOCAL_RANK]`` to DDP, which torch rejects
   for a CPU module: without CUDA our ``MMDistributedDataParallel`` drops ``device_ids``.

mmengine's ``DeepSpeedStrategy`` imports ``deepspeed.runtime.fp16.onebit``, gone from DeepSpeed
0.19: ``llmvision.engine.deepspeed_cfg.patch_mmengine_deepspeed`` routes around it when
``--deepspeed`` is used (kept there so that importing llmvision does not import DeepSpeed).

The remaining known trap, bf16 under ``AmpOptimWrapper`` (its GradScaler cannot unscale bf16
gradients), is handled by :class:`llmvision.engine.optim_wrappers.BF16OptimWrapper`.
"""
import importlib.metadata
import importlib.util
import os
import os.path as osp
import re
import tempfile
from typing import Optional

import numpy as np
import numpy._core.multiarray as _multiarray
import torch

_INSTALLED = False

TRUST_ENV = 'LLMVISION_TRUSTED_CHECKPOINTS'


def _safe_checkpoint_globals():
    from mmengine.config import ConfigDict
    from mmengine.logging.history_buffer import HistoryBuffer
    scalar_types = [np.float64, np.float32, np.float16, np.int64, np.int32, np.int16, np.int8,
                    np.uint8, np.bool_]
    dtype_classes = [type(np.dtype(t)) for t in scalar_types]
    return [HistoryBuffer, ConfigDict, np.ndarray, np.dtype, _multiarray._reconstruct,
            _multiarray.scalar, *scalar_types, *dtype_classes]


SAFE_CHECKPOINT_GLOBALS = []


def _history_buffer_getstate(self) -> dict:
    state = dict(self.__dict__)
    state.pop('statistics_methods', None)
    return state


_BLOCKED_GLOBAL = re.compile(r'unsupported global:?\s*(?:GLOBAL\s+)?([\w.]+)', re.IGNORECASE)

# first bytes of the files torch.load reads: a zip archive (torch >= 1.6) or a pickle (protocol >= 2)
_CHECKPOINT_MAGIC = (b'PK\x03\x04', b'\x80')


def blocked_global(message: str) -> Optional[str]:
    """The global that torch's weights-only unpickler refused, from its error message.

    torch < 2.14 writes ``Unsupported global: GLOBAL os.system``, 2.14 ``unsupported GLOBAL
    os.system``. Returns ``'unsupported global os.system'`` or ``None`` when the message names none.
    """
    match = _BLOCKED_GLOBAL.search(message)
    return f'unsupported global {match.group(1)}' if match else None


def check_checkpoint_file(path: str) -> None:
    """Raise a one-line error naming ``path`` unless it can be a checkpoint.

    Accepts a folder (a HF model folder), a ``.safetensors`` file (8-byte header length, then
    ``{``) and a ``torch.save`` file (zip archive or pickle). Checked before a model is built,
    so a wrong ``--weights`` fails in a second, not after the model has loaded.
    """
    if not osp.exists(path):
        raise FileNotFoundError(f'checkpoint not found: {path}')
    if osp.isdir(path):
        return
    with open(path, 'rb') as f:
        head = f.read(9)
    if path.endswith('.safetensors'):
        ok = len(head) == 9 and head[8:9] == b'{'
        kind = 'a .safetensors file'
    else:
        ok = head.startswith(_CHECKPOINT_MAGIC)
        kind = 'a torch.save file (.pth/.bin: zip archive or pickle)'
    if not ok:
        raise ValueError(f'{path}: not a checkpoint (expected {kind} or a HF model folder; '
                         f'the file starts with {head[:8]!r})')


def _patch_torch_load():
    """Allow-list mmengine's checkpoint objects for the weights-only unpickler."""
    from mmengine.logging.history_buffer import HistoryBuffer
    HistoryBuffer.__getstate__ = _history_buffer_getstate
    SAFE_CHECKPOINT_GLOBALS[:] = _safe_checkpoint_globals()
    torch.serialization.add_safe_globals(SAFE_CHECKPOINT_GLOBALS)

    from mmengine.runner import checkpoint as ckpt_mod
    original = ckpt_mod.load_from_local

    def load_from_local(filename, map_location):
        filename = osp.expanduser(filename)
        if not osp.isfile(filename):
            raise FileNotFoundError(f'{filename} can not be found.')
        check_checkpoint_file(filename)
        trusted = os.environ.get(TRUST_ENV, '0') == '1'
        try:
            return torch.load(filename, map_location=map_location, weights_only=not trusted)
        except Exception as err:  # the weights-only unpickler raises UnpicklingError / RuntimeError
            blocked = blocked_global(str(err))
            if trusted or 'weights_only' not in str(err) and blocked is None:
                raise
            raise RuntimeError(
                f'{filename}: the checkpoint holds pickled objects outside llmvision\'s safe list '
                f'({blocked or str(err).splitlines()[0]}). Loading it could run '
                f'arbitrary code. If you trust this file, set {TRUST_ENV}=1, or convert it with '
                'tools/convert_checkpoint.py.') from err

    load_from_local.__wrapped__ = original
    # The scheme registry holds the function object: replace it there too.
    for prefix, fn in list(ckpt_mod.CheckpointLoader._schemes.items()):
        if fn is original:
            ckpt_mod.CheckpointLoader._schemes[prefix] = load_from_local
    ckpt_mod.load_from_local = load_from_local


def is_installed(package: str) -> bool:
    """Whether a distribution or an importable module of this name exists."""
    try:
        importlib.metadata.distribution(package)
        return True
    except importlib.metadata.PackageNotFoundError:
        spec = importlib.util.find_spec(package)
        return spec is not None and spec.origin is not None


def package2module(package: str) -> str:
    """Top-level module name of an installed distribution."""
    dist = importlib.metadata.distribution(package)
    top_level = dist.read_text('top_level.txt')
    if top_level:
        return top_level.split('\n')[0]
    names = {p.parts[0] for p in (dist.files or []) if p.suffix == '.py' or len(p.parts) > 1}
    names = sorted(n for n in names if not n.endswith(('.dist-info', '.egg-info')) and n != '..')
    if not names:
        raise ValueError(f'can not infer the module name of {package}')
    return names[0]


def get_installed_path(package: str) -> str:
    """Folder of an installed package (module name inferred from the distribution)."""
    spec = importlib.util.find_spec(package)
    if spec is None:
        try:
            spec = importlib.util.find_spec(package2module(package))
        except importlib.metadata.PackageNotFoundError:
            spec = None
    if spec is None:
        raise importlib.metadata.PackageNotFoundError(package)
    if spec.origin is None:
        raise RuntimeError(f'{package} is a namespace package, which is invalid for '
                           '`get_installed_path`')
    return osp.dirname(spec.origin)


def _patch_pkg_resources():
    import mmengine.config.config as config_mod
    import mmengine.utils as utils_mod
    import mmengine.utils.package_utils as pu
    for mod in (pu, utils_mod, config_mod):
        for name, fn in (('is_installed', is_installed), ('get_installed_path', get_installed_path),
                         ('package2module', package2module)):
            if hasattr(mod, name):
                setattr(mod, name, fn)


def atomic_write_bytes(data: bytes, filepath) -> None:
    """Write ``data`` to ``filepath`` through a temporary file and ``os.replace``."""
    filepath = str(filepath)
    folder = osp.dirname(osp.abspath(filepath))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix='.' + osp.basename(filepath) + '.', suffix='.tmp', dir=folder)
    try:
        with os.fdopen(fd, 'wb') as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, filepath)
    except BaseException:
        if osp.exists(tmp):
            os.unlink(tmp)
        raise


def _patch_atomic_local_writes():
    from mmengine.fileio.backends.local_backend import LocalBackend

    def put(self, obj: bytes, filepath) -> None:
        atomic_write_bytes(obj, filepath)

    def put_text(self, obj: str, filepath, encoding: str = 'utf-8') -> None:
        atomic_write_bytes(obj.encode(encoding), filepath)

    LocalBackend.put = put
    LocalBackend.put_text = put_text


def _patch_cpu_dist_init():
    import mmengine.dist.utils as dist_utils
    original = dist_utils._init_dist_pytorch

    def _init_dist_pytorch(backend='nccl', init_backend='torch', **kwargs):
        if torch.cuda.is_available():
            return original(backend, init_backend=init_backend, **kwargs)
        import torch.distributed as torch_dist
        if backend == 'nccl':
            backend = 'gloo'
        if init_backend == 'deepspeed':
            import deepspeed
            return deepspeed.init_distributed(dist_backend=backend, **kwargs)
        torch_dist.init_process_group(backend=backend, **kwargs)

    _init_dist_pytorch.__wrapped__ = original
    dist_utils._init_dist_pytorch = _init_dist_pytorch


def _patch_cpu_ddp():
    from mmengine.model.wrappers import MMDistributedDataParallel
    original = MMDistributedDataParallel.__init__

    def __init__(self, module, detect_anomalous_params: bool = False, **kwargs):
        if not torch.cuda.is_available():
            kwargs.pop('device_ids', None)
            kwargs.pop('output_device', None)
        original(self, module, detect_anomalous_params=detect_anomalous_params, **kwargs)

    __init__.__wrapped__ = original
    MMDistributedDataParallel.__init__ = __init__


def install() -> None:
    """Install all patches (safe to call more than once)."""
    global _INSTALLED
    if _INSTALLED:
        return
    _patch_pkg_resources()
    _patch_torch_load()
    _patch_atomic_local_writes()
    _patch_cpu_dist_init()
    _patch_cpu_ddp()
    _INSTALLED = True


install()
