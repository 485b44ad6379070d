"""Convert a Grounding-DINO (HF mm-grounding-dino, mmdet/LLMDet) or LLaVA checkpoint to llmvision keys.

    python tools/convert_checkpoint.py SRC DST --from hf|mmdet|auto [--side DST_SIDE]
    # transformers LLaVA folder (llava-hf layout) -> LLaVAModel
    python tools/convert_checkpoint.py checkpoints/llava-1.5-7b-hf llava15_7b.pth --from llava-hf
    # original LLaVA: LLM folder (+ mm_projector.bin of the pre-training stage) (+ the CLIP folder)
    python tools/convert_checkpoint.py checkpoints/vicuna-7b-v1.5 llava15_7b.pth --from llava \
        --mm-projector checkpoints/llava-v1.5-mlp2x-336px-pretrain-vicuna-7b-v1.5/mm_projector.bin \
        --vision-tower checkpoints/clip-vit-large-patch14-336
    # a released LLMDet .pth, WHOLE (detector + captioner) -> the LLMDet the config builds
    python tools/convert_checkpoint.py checkpoints/llmdet_swin_tiny.pth llmdet_t.pth --from llmdet \
        --config configs/llmdet/llmdet_swin_t.py

SRC: a .pth / .bin / .safetensors file or a HF model folder. DST: an mmengine-style checkpoint
``{'state_dict': ..., 'meta': {...}}`` written to a temp file and moved into place. Keys that no
rule converts are listed and make the tool exit with status 1 (use ``--allow-unconverted`` to
write anyway); with ``--from mmdet`` LLMDet's LLM/captioner keys go to ``--side`` (or are dropped
with a note). ``--from llmdet`` builds the model of ``--config`` (its LLM folder and tokenizer must
be on disk), loads SRC with ``llmvision.checkpoint.load_llmdet_checkpoint`` and writes the model's
whole state dict; keys unconverted, missing, unexpected or of another shape are listed and exit 1,
keys without a counterpart on purpose (LLaVA's ``image_newline``) are listed as ignored.
"""
import argparse
import os
import sys

import torch
from mmengine.config import DictAction

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))   # as tools/train.py: a clone runs


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split('\n')[1])
    parser.add_argument('src')
    parser.add_argument('dst')
    parser.add_argument('--from', dest='src_format', default='auto',
                        choices=['auto', 'hf', 'mmdet', 'llava-hf', 'llava', 'llmdet'],
                        help='auto tells hf / mmdet / llava-hf apart; the original LLaVA layout needs --from llava, '
                        'a whole LLMDet (detector + captioner) --from llmdet --config')
    parser.add_argument('--side', default=None, help='where to save the keys set aside (LLMDet LLM/captioner, '
                        'CLIP text tower, derived buffers)')
    parser.add_argument('--mm-projector', help='--from llava: mm_projector.bin of the pre-training stage')
    parser.add_argument('--vision-tower', help='--from llava: the CLIP / SigLIP folder (vision_model.* keys)')
    parser.add_argument('--config', help='--from llmdet: the LLMDet config whose model the checkpoint fills')
    parser.add_argument('--cfg-options', nargs='+', action=DictAction, help='--from llmdet: config overrides')
    parser.add_argument('--allow-unconverted', action='store_true')
    args = parser.parse_args(argv)
    if args.src_format != 'llava' and (args.mm_projector or args.vision_tower):
        parser.error('--mm-projector / --vision-tower go with --from llava')
    if (args.src_format == 'llmdet') != (args.config is not None) or (args.cfg_options and not args.config):
        parser.error('--from llmdet needs --config (and --config / --cfg-options go with --from llmdet only)')
    if args.src_format == 'llmdet':
        if args.side:
            parser.error('--from llmdet sets nothing aside: --side does not apply')
        return _convert_llmdet(args)
    converted, report = _convert(args)
    print(f'converted {len(converted)} tensors from {args.src}')
    if report.side:
        if args.side:
            _save({'state_dict': report.side}, args.side)
            print(f'{len(report.side)} tensors set aside saved to {args.side}')
        else:
            print(f'{len(report.side)} tensors set aside (LLM/captioner, CLIP text tower, derived buffers) '
                  'dropped (pass --side to keep them)')
    if report.unconverted:
        print(f'{len(report.unconverted)} keys could not be converted:', file=sys.stderr)
        for k in report.unconverted:
            print('  ' + k, file=sys.stderr)
        if not args.allow_unconverted:
            return 1
    meta = {'converted_from': os.path.abspath(args.src), 'format': args.src_format}
    meta.update({k: os.path.abspath(v) for k, v in (('mm_projector', args.mm_projector),
                                                    ('vision_tower', args.vision_tower)) if v})
    _save({'state_dict': converted, 'meta': meta}, args.dst)
    print(f'wrote {args.dst}')
    return 0


def _convert(args):
    """``(ours, report)`` for the source format (``args.src_format`` becomes the detected one)."""
    from llmvision.checkpoint import convert_state_dict
    from llmvision.checkpoint.llava_hf import is_llava_hf
    from llmvision.checkpoint.llava_load import convert_llava_state_dict, read_checkpoint
    state_dict = read_checkpoint(args.src)
    if args.src_format == 'auto' and is_llava_hf(state_dict):
        args.src_format = 'llava-hf'
    if args.src_format not in ('llava-hf', 'llava'):
        return convert_state_dict(state_dict, args.src_format)
    pieces = [read_checkpoint(p) if p else None for p in (args.mm_projector, args.vision_tower)]
    return convert_llava_state_dict(state_dict, args.src_format, *pieces)


def _convert_llmdet(args) -> int:
    """Build the config's LLMDet, load the released checkpoint whole, write our checkpoint; 1 if keys are off."""
    import llmvision  # noqa: F401  (mmengine compatibility patches: weights-only loading of the file)
    from llmvision.checkpoint import load_llmdet_checkpoint
    from llmvision.registry import MODELS
    from llmvision.utils.config import load_config
    cfg = load_config(args.config, args.cfg_options)
    model = MODELS.build(cfg.model)
    report = load_llmdet_checkpoint(model, args.src)
    print(f'loaded {args.src} into the model of {args.config}:')
    print(report.summary())
    if not report.ok:
        print(f'{args.src} does not fill the model: {len(report.unconverted)} unconverted, {len(report.missing)} '
              f'missing, {len(report.unexpected)} unexpected, {len(report.shape_mismatch)} of another shape '
              '(listed above)', file=sys.stderr)
        for k in report.unconverted:
            print('  unconverted: ' + k, file=sys.stderr)
        if not args.allow_unconverted:
            return 1
    meta = {'converted_from': os.path.abspath(args.src), 'format': 'llmdet', 'config': os.path.abspath(args.config),
            'ignored': sorted(report.ignored)}
    _save({'state_dict': model.state_dict(), 'meta': meta}, args.dst)
    print(f'wrote {args.dst}')
    return 0


def _save(obj, path):
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    tmp = path + '.tmp'
    torch.save(obj, tmp)
    os.replace(tmp, path)


if __name__ == '__main__':
    sys.exit(main())
