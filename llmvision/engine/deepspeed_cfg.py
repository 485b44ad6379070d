"""Build an mmengine ``DeepSpeedStrategy`` from ``--deepspeed zero2|zero3|file.json`` and a config.

The DeepSpeed json and the mmengine config can disagree on batch size, gradient accumulation,
clipping and precision. The config wins (it is what the data loader and schedule were written
for); every disagreement is logged as a warning so a user sees which value was used.
"""
import importlib
import json
import os.path as osp

from mmengine.logging import print_log

# (module, class) pairs mmengine 0.10.7 registers into OPTIMIZERS when a DeepSpeedStrategy is
# built. DeepSpeed >= 0.17 removed ``deepspeed.runtime.fp16.onebit`` (1-bit Adam/LAMB, 0/1 Adam),
# and mmengine imports it unconditionally, so every strategy construction failed with
# "No module named 'deepspeed.runtime.fp16.onebit'". We register whichever of them exist.
DEEPSPEED_OPTIMIZERS = (
    ('deepspeed.ops.adam', 'DeepSpeedCPUAdam'),
    ('deepspeed.ops.adam', 'FusedAdam'),
    ('deepspeed.ops.lamb', 'FusedLamb'),
    ('deepspeed.runtime.fp16.onebit', 'OnebitAdam'),
    ('deepspeed.runtime.fp16.onebit', 'OnebitLamb'),
    ('deepspeed.runtime.fp16.onebit', 'ZeroOneAdam'),
)


def register_deepspeed_optimizers() -> list:
    """Register the DeepSpeed optimizers this DeepSpeed version has; return their names."""
    from mmengine.registry import OPTIMIZERS
    names = []
    for module_name, cls_name in DEEPSPEED_OPTIMIZERS:
        try:
            cls = getattr(importlib.import_module(module_name), cls_name)
        except (ImportError, AttributeError):
            continue
        OPTIMIZERS.register_module(module=cls, force=True)
        names.append(cls_name)
    return names


def patch_mmengine_deepspeed() -> None:
    """Make ``mmengine._strategy.deepspeed`` use :func:`register_deepspeed_optimizers`.

    Idempotent; runs in every rank (``merge_train_args`` calls :func:`deepspeed_strategy` before
    the runner, hence the strategy, is built).
    """
    import mmengine._strategy.deepspeed as ds_mod
    if ds_mod.register_deepspeed_optimizers is not register_deepspeed_optimizers:
        ds_mod.register_deepspeed_optimizers = register_deepspeed_optimizers

ZERO_PRESETS = {
    'zero2': dict(stage=2, overlap_comm=True, contiguous_gradients=True, reduce_bucket_size=5e8,
                  allgather_bucket_size=5e8),
    'zero3': dict(stage=3, overlap_comm=True, contiguous_gradients=True,
                  stage3_gather_16bit_weights_on_model_save=True),
}


def _read_ds_config(spec: str) -> dict:
    if spec in ZERO_PRESETS:
        return dict(zero_optimization=dict(ZERO_PRESETS[spec]))
    if not osp.isfile(spec):
        raise FileNotFoundError(f'--deepspeed: expected zero2, zero3 or a json file, got {spec!r} '
                                '(file not found)')
    try:
        with open(spec) as f:
            return json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'{spec}:{err.lineno}: invalid DeepSpeed json: {err.msg}') from err


def _reconcile(ds: dict, key: str, value, source: str) -> None:
    if value is None:
        return
    old = ds.get(key, 'auto')
    if old not in ('auto', None) and old != value:
        print_log(f'DeepSpeed {key}={old} in the json differs from {source}={value}; using {value}',
                  logger='current', level=30)
    ds[key] = value


def deepspeed_strategy(cfg, spec: str, amp: str = None):
    """Return ``(strategy, optim_wrapper)`` config dicts for ``FlexibleRunner``."""
    patch_mmengine_deepspeed()
    ds = _read_ds_config(spec)
    wrapper = cfg.optim_wrapper
    _reconcile(ds, 'train_micro_batch_size_per_gpu', cfg.train_dataloader.get('batch_size'),
               'train_dataloader.batch_size')
    _reconcile(ds, 'gradient_accumulation_steps', wrapper.get('accumulative_counts', 1),
               'optim_wrapper.accumulative_counts')
    clip = (wrapper.get('clip_grad') or {}).get('max_norm')
    _reconcile(ds, 'gradient_clipping', clip, 'optim_wrapper.clip_grad.max_norm')
    if amp == 'bf16':
        ds['bf16'] = dict(enabled=True)
        ds.pop('fp16', None)
    elif amp == 'fp16':
        ds['fp16'] = dict(enabled=True, loss_scale=0, initial_scale_power=16)
        ds.pop('bf16', None)
    ds.pop('train_batch_size', None)  # derived by DeepSpeed from micro batch x accumulation x world
    # registered names (mmengine STRATEGIES / OPTIM_WRAPPERS): the runner dumps the config as text
    strategy = dict(type='DeepSpeedStrategy', config=ds)
    optim_wrapper = dict(type='DeepSpeedOptimWrapper', optimizer=wrapper.optimizer)
    if 'paramwise_cfg' in wrapper:  # lr multipliers are applied by the optimizer constructor
        optim_wrapper['paramwise_cfg'] = wrapper.paramwise_cfg
    return strategy, optim_wrapper
