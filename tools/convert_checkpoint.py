"""Convert a Grounding-DINO checkpoint (HF mm-grounding-dino or mmdet/LLMDet) to llmvision keys.

    python tools/convert_checkpoint.py SRC DST --from hf|mmdet|auto [--side DST_SIDE]

SRC: a .pth / .bin / .safetensors file or a HF model folder. DST: an mmengine-style checkpoint
``{'state_dict': ..., 'meta': {...}}`` written to a temp file and moved into place. Keys that no
rule converts are listed and make the tool exit with status 1 (use ``--allow-unconverted`` to
write anyway); LLMDet's LLM/captioner keys go to ``--side`` (or are dropped with a note).
"""
import argparse
import os
import sys

import torch


def main(argv=None) -> int:
    from llmvision.checkpoint import convert_state_dict, read_state_dict
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--from', dest='src_format', default='auto', choices=['auto', 'hf', 'mmdet'])
    parser.add_argument('--side', default=None, help='where to save the LLM/captioner keys')
    parser.add_argument('--allow-unconverted', action='store_true')
    args = parser.parse_args(argv)
    converted, report = convert_state_dict(read_state_dict(args.src), args.src_format)
    print(f'converted {len(converted)} tensors from {args.src}')
    if report.side:
        if args.side:
            _save({'state_dict': report.side}, args.side)
            print(f'{len(report.side)} LLM/captioner tensors saved to {args.side}')
        else:
            print(f'{len(report.side)} LLM/captioner tensors dropped (pass --side to keep them)')
    if report.unconverted:
        print(f'{len(report.unconverted)} keys could not be converted:', file=sys.stderr)
        for k in report.unconverted:
            print('  ' + k, file=sys.stderr)
        if not args.allow_unconverted:
            return 1
    _save({'state_dict': converted, 'meta': {'converted_from': os.path.abspath(args.src),
                                             'format': args.src_format}}, args.dst)
    print(f'wrote {args.dst}')
    return 0


def _save(obj, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


if __name__ == '__main__':
    sys.exit(main())
