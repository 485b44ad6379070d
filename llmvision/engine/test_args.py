"""Fold ``tools/test.py`` command-line options into a config.

Injected components are named by their registered type names (strings): mmengine dumps the
config as Python text, which a class object inserted at run time would break.
"""
import os.path as osp

from mmengine.config import Config


def _as_list(evaluator):
    if isinstance(evaluator, (list, tuple)):
        return list(evaluator)
    if isinstance(evaluator, dict) and 'metrics' in evaluator:
        return list(evaluator['metrics']) if isinstance(evaluator['metrics'], (list, tuple)) \
            else [evaluator['metrics']]
    return [evaluator]


def merge_test_args(cfg: Config, args) -> Config:
    """Apply work dir, checkpoint, ``--out`` and ``--show-dir`` to ``cfg``."""
    if not osp.isfile(args.checkpoint):
        raise FileNotFoundError(f'checkpoint not found: {args.checkpoint}')
    if args.work_dir is not None:
        cfg.work_dir = args.work_dir
    elif cfg.get('work_dir') is None:
        cfg.work_dir = osp.join('./work_dirs', osp.splitext(osp.basename(args.config))[0])
    cfg.launcher = args.launcher
    cfg.load_from = args.checkpoint
    cfg.resume = False
    for key in ('test_dataloader', 'test_cfg', 'test_evaluator'):
        if cfg.get(key) is None:
            raise KeyError(f'{args.config}: `{key}` is required by tools/test.py')

    if args.out:
        metrics = _as_list(cfg.test_evaluator)
        # registered names, not classes: the runner dumps the config as text
        if args.out.endswith('.json'):
            metrics.append(dict(type='DumpDetResults', out_file_path=args.out))
        elif args.out.endswith(('.pkl', '.pickle')):
            metrics.append(dict(type='DumpResults', out_file_path=args.out))
        else:
            raise ValueError(f'--out must end with .json or .pkl, got {args.out}')
        cfg.test_evaluator = metrics

    if args.show_dir:
        hooks = cfg.setdefault('custom_hooks', [])
        hooks.append(dict(type='DetVisualizationHook', test_out_dir=args.show_dir))
    return cfg
