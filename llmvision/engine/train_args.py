"""Fold ``tools/train.py`` command-line options into a config (mmpretrain's ``merge_args``)."""
import os.path as osp

from mmengine.config import Config
from mmengine.logging import print_log

from .deepspeed_cfg import deepspeed_strategy


def _set_amp(cfg: Config, amp: str) -> None:
    wrapper = cfg.optim_wrapper  # registered names below: the runner dumps the config as text
    if amp == 'bf16':
        wrapper.type = 'BF16OptimWrapper'
        wrapper.pop('loss_scale', None)
        wrapper.pop('dtype', None)
    else:
        import torch
        if not torch.cuda.is_available():
            raise RuntimeError('--amp fp16 needs a GPU (torch.cuda.amp GradScaler); use --amp bf16 on CPU')
        from mmengine.optim import AmpOptimWrapper
        if wrapper.get('type') not in (AmpOptimWrapper, 'AmpOptimWrapper'):
            wrapper.type = 'AmpOptimWrapper'
            wrapper.setdefault('loss_scale', 'dynamic')
        wrapper.dtype = 'float16'


def merge_train_args(cfg: Config, args) -> Config:
    """Apply work dir, resume, AMP, DeepSpeed / FSDP, auto-scale-lr and no-validate options to ``cfg``."""
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.launcher = args.launcher

    if args.resume == 'auto':
        cfg.resume = True
        cfg.load_from = None
    elif args.resume is not None:
        if not osp.isfile(args.resume):
            raise FileNotFoundError(f'--resume: checkpoint not found: {args.resume}')
        cfg.resume = True
        cfg.load_from = args.resume

    if args.amp:
        _set_amp(cfg, args.amp)

    if getattr(args, 'deepspeed', None) and getattr(args, 'fsdp', None):
        raise ValueError('--deepspeed and --fsdp are alternatives: give one')
    if getattr(args, 'deepspeed', None):
        cfg.strategy, cfg.optim_wrapper = deepspeed_strategy(cfg, args.deepspeed, args.amp)
    if getattr(args, 'fsdp', None):
        from .fsdp_cfg import fsdp_strategy
        cfg.strategy, cfg.optim_wrapper = fsdp_strategy(
            cfg, args.fsdp, args.amp, getattr(args, 'fsdp_min_params', None))

    if args.auto_scale_lr:
        if 'auto_scale_lr' not in cfg or 'base_batch_size' not in cfg.auto_scale_lr:
            raise KeyError('--auto-scale-lr needs `auto_scale_lr = dict(enable=..., base_batch_size=N)` '
                           f'in {args.config}')
        cfg.auto_scale_lr.enable = True

    if args.no_validate:
        for key in ('val_dataloader', 'val_cfg', 'val_evaluator'):
            cfg[key] = None
        print_log('--no-validate: validation disabled', logger='current')
    return cfg
