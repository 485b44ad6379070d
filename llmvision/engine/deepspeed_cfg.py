"""Build an mmengine ``DeepSpeedStrategy`` from ``--deepspeed zero2|zero3|file.json`` and a config.

The DeepSpeed json and the mmengine config can disagree on batch size, gradient accumulation,
clipping and precision. The config wins (it is what the data loader and schedule were written
for); every disagreement is logged as a warning so a user sees which value was used.

Usage (``tools/train.py`` then builds mmengine's ``FlexibleRunner``; the optimizer stays the
config's torch optimizer, handed to ``deepspeed.initialize`` as a client optimizer)::

    # GPUs (nccl): 8 ranks, ZeRO-2, bf16
    bash dist_train.sh configs/llmdet/llmdet_swin_t.py 8 --deepspeed zero2 --amp bf16
    # a DeepSpeed json of your own (offload, buckets...); batch/accumulation/clipping come from the config
    bash dist_train.sh CONFIG 8 --deepspeed my_ds.json
    # CPU (gloo; what tests/test_engine_deepspeed.py runs): DeepSpeed picks its CPU accelerator
    # by itself when no GPU is found (or set DS_ACCELERATOR=cpu)
    bash dist_train.sh configs/grounding_dino/grounding_dino_tiny_synthetic.py 1 --deepspeed zero3

Checked on CPU with deepspeed 0.19.8 + torch 2.14 (gloo): ZeRO-2 and ZeRO-3, fp32, 1 rank,
torch ``AdamW`` as a client optimizer (no ``zero_allow_untested_optimizer`` needed), and
``--amp bf16`` (DeepSpeed ``torch_autocast``: fp32 weights, bf16 autocast, like our
``BF16OptimWrapper``; DeepSpeed's own ``bf16`` mode casts all weights and our models' fp32
buffers/text features then clash: "mat1 and mat2 must have the same dtype"). DeepSpeed
JIT-builds its ``deepspeed_shm_comm_op`` C++ op on first use on CPU (needs a C++ compiler).
The checkpoint ``iter_N.pth`` is a DeepSpeed checkpoint *folder*; ``zero_to_fp32.py`` in the
work dir turns it into one state dict.
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
    if not spec.endswith('.json'):
        raise ValueError(f'--deepspeed: unknown preset {spec!r}; use one of '
                         f'{sorted(ZERO_PRESETS)} or a path to a DeepSpeed .json file')
    if not osp.isfile(spec):
        raise FileNotFoundError(f'--deepspeed: DeepSpeed json file not found: {spec}')
    try:
        with open(spec) as f:
            ds = json.load(f)
    except json.JSONDecodeError as err:
        raise ValueError(f'{spec}:{err.lineno}: invalid DeepSpeed json: {err.msg}') from err
    if not isinstance(ds, dict):
        raise ValueError(f'{spec}:1: a DeepSpeed json must hold an object {{...}}, '
                         f'got {type(ds).__name__}')
    return ds


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
    _reconcile(ds, 'gradient_clipping', clip if clip is not None else 0.0,
               'optim_wrapper.clip_grad.max_norm (0: no clip_grad in the config)')
    norm_type = (wrapper.get('clip_grad') or {}).get('norm_type', 2)
    if clip is not None and norm_type != 2:
        print_log(f'DeepSpeed clips the global L2 norm; optim_wrapper.clip_grad.norm_type={norm_type} '
                  'is ignored', logger='current', level=30)
    if amp == 'bf16':  # like BF16OptimWrapper: fp32 weights, bf16 autocast (our models mix dtypes)
        ds['torch_autocast'] = dict(enabled=True, dtype='bfloat16')
        ds.pop('fp16', None)
        ds.pop('bf16', None)
    elif amp == 'fp16':
        ds['fp16'] = dict(enabled=True, loss_scale=0, initial_scale_power=16)
        ds.pop('bf16', None)
    if ds.pop('train_batch_size', 'auto') not in ('auto', None):  # DeepSpeed derives it
        print_log('DeepSpeed train_batch_size in the json is ignored: it is micro batch x '
                  'accumulation x world size from the config', logger='current', level=30)
    # registered names (mmengine STRATEGIES / OPTIM_WRAPPERS): the runner dumps the config as text
    strategy = dict(type='DeepSpeedStrategy', config=ds)
    if amp == 'fp16':  # DeepSpeed casts the weights: cast the images to match
        strategy['inputs_to_half'] = ['inputs']
    optim_wrapper = dict(type='DeepSpeedOptimWrapper', optimizer=wrapper.optimizer)
    if 'paramwise_cfg' in wrapper:  # lr multipliers are applied by the optimizer constructor
        optim_wrapper['paramwise_cfg'] = wrapper.paramwise_cfg
    return strategy, optim_wrapper
