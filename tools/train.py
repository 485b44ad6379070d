"""Train a model from a config.

    python tools/train.py CONFIG [--work-dir DIR] [--resume [auto|PATH]] [--amp [fp16|bf16]]
                                 [--deepspeed zero2|zero3|PATH.json] [--fsdp [SHARDING]]
                                 [--fsdp-min-params N] [--auto-scale-lr] [--no-validate]
                                 [--cfg-options k=v ...] [--launcher none|pytorch|slurm|mpi]

``bash dist_train.sh CONFIG GPUS [args]`` runs the same script under torchrun.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)
from llmvision.engine.hooks.non_finite_guard import NonFiniteError  # noqa: E402
from llmvision.engine.launch import (  # noqa: E402
    ConfigError,
    add_launch_args,
    build_runner,
    load_config,
    parse_launch_args,
    shutdown_dist,
)
from llmvision.engine.optim_wrappers import check_optimizer_types  # noqa: E402
from llmvision.engine.train_args import merge_train_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Train a model')
    parser.add_argument('config', help='train config file path')
    parser.add_argument('--work-dir', help='the dir to save logs and models')
    parser.add_argument(
        '--resume', nargs='?', type=str, const='auto',
        help='resume from the given checkpoint, or from the latest one in the work dir when '
        'no path (or "auto") is given')
    parser.add_argument(
        '--amp', nargs='?', const='fp16', choices=['fp16', 'bf16'],
        help='mixed precision: fp16 (AmpOptimWrapper with a grad scaler, GPU only) or bf16 '
        '(BF16OptimWrapper: autocast, no scaler; works with bf16 weights and on CPU)')
    parser.add_argument(
        '--deepspeed', help='train with DeepSpeed through FlexibleRunner: zero2, zero3, or a '
        'DeepSpeed json config file')
    parser.add_argument(
        '--fsdp', nargs='?', const='FULL_SHARD', metavar='SHARDING',
        help='train with torch FSDP through FlexibleRunner: FULL_SHARD (default), SHARD_GRAD_OP, '
        'NO_SHARD or HYBRID_SHARD (see llmvision/engine/fsdp_cfg.py)')
    parser.add_argument('--fsdp-min-params', type=int, default=None,
                        help='with --fsdp: wrap sub-modules of at least N parameters as their own '
                        'FSDP units (default: the whole model is one unit)')
    parser.add_argument('--auto-scale-lr', action='store_true',
                        help='scale the lr by total batch size / auto_scale_lr.base_batch_size')
    parser.add_argument('--no-validate', action='store_true',
                        help='do not evaluate checkpoints during training')
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


def _fail(message: str) -> None:
    """One-line error on stderr (rank 0 only under torchrun), exit status 1."""
    import os
    if os.environ.get('RANK', '0') == '0':
        print(f'error: {message}', file=sys.stderr)
    sys.exit(1)


def main(argv=None):
    args = parse_args(argv)
    try:  # config problems: one line naming the file / key / value, before anything is built
        cfg = load_config(args.config, args.cfg_options)
        cfg = merge_train_args(cfg, args)
        check_optimizer_types(cfg, args.config)
    except (ConfigError, KeyError, ValueError, FileNotFoundError) as err:
        _fail(err.args[0] if isinstance(err, KeyError) and err.args else str(err))
    runner = build_runner(cfg)
    try:
        runner.train()
    except NonFiniteError as err:  # logged in full by the hook; every rank stops here together
        _fail(str(err))
    finally:
        shutdown_dist()


if __name__ == '__main__':
    main()
