"""Evaluate a checkpoint with the config's test dataloader and evaluator.

    python tools/test.py CONFIG CHECKPOINT [--work-dir DIR] [--out results.json|results.pkl]
                                           [--show-dir DIR] [--cfg-options k=v ...]
                                           [--launcher none|pytorch|slurm|mpi]

``--out`` with ``.json`` writes the predictions in COCO/LVIS result format (image_id,
category_id, bbox xywh, score); with ``.pkl`` it dumps the raw predictions. ``--show-dir``
draws the predictions on each image into that folder (under the work dir).
``bash dist_test.sh CONFIG CHECKPOINT GPUS [args]`` runs the same script under torchrun.
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)
from llmvision.engine.launch import build_runner, load_config, shutdown_dist  # noqa: E402
from llmvision.engine.test_args import merge_test_args  # noqa: E402
from mmengine.config import DictAction  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions: .json (COCO/LVIS result format) or .pkl')
    parser.add_argument('--show-dir', help='draw predictions into this folder (inside the work dir)')
    parser.add_argument(
        '--cfg-options', nargs='+', action=DictAction,
        help='override config settings, key=value pairs (xxx=yyy or key.sub=[a,b])')
    parser.add_argument('--launcher', choices=['none', 'pytorch', 'slurm', 'mpi'], default='none',
                        help='job launcher')
    parser.add_argument('--local_rank', '--local-rank', type=int, default=0)
    args = parser.parse_args(argv)
    if 'LOCAL_RANK' not in os.environ:
        os.environ['LOCAL_RANK'] = str(args.local_rank)
    return args


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    cfg = merge_test_args(cfg, args)
    runner = build_runner(cfg)
    try:
        return runner.test()
    finally:
        shutdown_dist()


if __name__ == '__main__':
    main()
