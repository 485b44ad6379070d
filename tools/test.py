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
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)
from llmvision.engine.launch import add_launch_args, build_runner, load_config, parse_launch_args, shutdown_dist  # noqa: E402
from llmvision.engine.test_args import merge_test_args  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Test (and evaluate) a model')
    parser.add_argument('config', help='test config file path')
    parser.add_argument('checkpoint', help='checkpoint file')
    parser.add_argument('--work-dir', help='the dir to save the evaluation metrics')
    parser.add_argument('--out', help='dump predictions: .json (COCO/LVIS result format) or .pkl')
    parser.add_argument('--show-dir', help='draw predictions into this folder (inside the work dir)')
    add_launch_args(parser)
    return parse_launch_args(parser, argv)


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
