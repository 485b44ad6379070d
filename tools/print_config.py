"""Print the resolved config (bases merged, ``--cfg-options`` applied), as mmdet's print_config.

    python tools/print_config.py CONFIG [--cfg-options k=v ...] [--out resolved.py]

``--out`` also writes it as a config file that ``tools/train.py`` / ``tools/test.py`` read.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)
from llmvision.utils.config import load_config  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description='Print the resolved config')
    parser.add_argument('config', help='config file')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, default={},
                        help='override settings, e.g. model.num_queries=300')
    parser.add_argument('--out', help='also write the resolved config to this file (.py)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    cfg = load_config(args.config, args.cfg_options)
    print(f'Config:\n{cfg.pretty_text}')
    if args.out:
        cfg.dump(args.out)
        print(f'written to {args.out}')


if __name__ == '__main__':
    main()
