"""Load a config with clear errors, and build the right mmengine runner for it."""
import os.path as osp

from mmengine.config import Config


class ConfigError(ValueError):
    """A config file that cannot be used, with the file named in the message."""


def add_launch_args(parser) -> None:
    """``--cfg-options``, ``--launcher`` and ``--local-rank``: shared by tools/train.py and test.py."""
    from mmengine.config import DictAction
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs (xxx=yyy or key.sub=[a,b])')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    # torchrun >= 2.0 passes --local-rank; older launchers pass --local_rank
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)


def parse_launch_args(parser, argv=None):
    """Parse, and export ``LOCAL_RANK`` for launchers that pass it only as an argument."""
    import os
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def load_config(path: str, cfg_options: dict = None) -> Config:
    """Read a pure-Python config and apply ``--cfg-options`` overrides.

    Raises:
        FileNotFoundError: the config file does not exist.
        ConfigError: the file cannot be parsed, or an override names a bad key.
    """
    if not osp.isfile(path):
        raise FileNotFoundError(f'config file not found: {path}')
    try:
        cfg = Config.fromfile(path)
    except SyntaxError as err:
        raise ConfigError(f'{path}:{err.lineno}: syntax error in config: {err.msg}') from err
    except Exception as err:
        raise ConfigError(f'{path}: cannot load config: {err.__class__.__name__}: {err}') from err
    if cfg_options:
        try:
            cfg.merge_from_dict(cfg_options)
        except Exception as err:
            raise ConfigError(f'{path}: bad --cfg-options {cfg_options}: {err}') from err
    if 'model' not in cfg:
        raise ConfigError(f'{path}: config defines no `model`')
    return cfg


def adapt_dist_backend(cfg: Config) -> None:
    """Use gloo when the config asks for nccl on a machine without CUDA (CPU runs, tests)."""
    import torch
    dist_cfg = cfg.get('env_cfg', {}).get('dist_cfg', {})
    if dist_cfg.get('backend', 'nccl') == 'nccl' and not torch.cuda.is_available():
        cfg.setdefault('env_cfg', {}).setdefault('dist_cfg', {})['backend'] = 'gloo'


def build_runner(cfg: Config):
    """``FlexibleRunner`` when the config sets a ``strategy`` (DeepSpeed, FSDP), else ``Runner``.

    A config may name its own runner class with ``runner_type``.
    """
    adapt_dist_backend(cfg)
    if 'runner_type' in cfg:
        from llmvision.registry import RUNNERS
        return RUNNERS.build(cfg)
    if cfg.get('strategy') is not None:
        from mmengine.runner import FlexibleRunner
        return FlexibleRunner.from_cfg(cfg)
    from mmengine.runner import Runner
    return Runner.from_cfg(cfg)


def shutdown_dist() -> None:
    """Destroy the process group at the end of a run (a gloo group left to interpreter exit can
    abort a rank with "terminate called without an active exception")."""
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized():
        dist.barrier()
        dist.destroy_process_group()
