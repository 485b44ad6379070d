"""Load a config with clear errors, and build the right mmengine runner for it."""

from mmengine.config import Config

from llmvision.utils.config import ConfigError, load_config  # noqa: F401  (re-exported for the tools)


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
