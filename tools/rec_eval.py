"""REC accuracy table per split: detector-only, zero-shot LLM, fine-tuned LLM, oracle, ensembles.

    python tools/rec_eval.py --data-root data/refcoco_refer --dataset refcoco --split-by unc \
        --splits val testA testB --candidates gdino=work_dirs/gdino_{split}.jsonl \
        florence2=work_dirs/florence_{split}.jsonl --ensemble gdino+florence2 \
        --config configs/llm_wrapper/llm_wrapper_qwen2_0.5b_refcoco.py \
        --checkpoint work_dirs/llm_wrapper/epoch_1.pth --zero-shot --out work_dirs/rec_table.md

``--candidates NAME=PATH`` (``{split}`` in PATH is replaced by the split name; PATH
``synthetic`` uses :class:`SyntheticCandidateSource`). Rows for each source and each ensemble:
detector-only (top box of the first source), oracle (best candidate), and with ``--config``
the LLM selector zero-shot (``--zero-shot``: the config's weights, LoRA untouched) and/or
fine-tuned (``--checkpoint``). Accuracy: IoU > ``--iou-thr`` with the GT (``--inclusive``: >=).
"""
import argparse
import os
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='REC selector accuracy table')
    p.add_argument('--data-root', required=True)
    p.add_argument('--dataset', default='refcoco')
    p.add_argument('--split-by', default='unc')
    p.add_argument('--splits', nargs='+', default=['val'])
    p.add_argument('--img-prefix', default=None)
    p.add_argument('--candidates', nargs='+', required=True, metavar='NAME=PATH')
    p.add_argument('--ensemble', nargs='*', default=[], metavar='A+B',
                   help='source names joined by "+": one prompt with one block per source')
    p.add_argument('--config', help='selector config (defines `model`)')
    p.add_argument('--checkpoint', help='fine-tuned selector checkpoint')
    p.add_argument('--zero-shot', action='store_true', help='also score the config without checkpoint')
    p.add_argument('--iou-thr', type=float, default=0.5)
    p.add_argument('--inclusive', action='store_true', help='hit when IoU >= thr (default: >)')
    p.add_argument('--batch-size', type=int, default=16)
    p.add_argument('--max-records', type=int, default=None)
    p.add_argument('--out', help='write the markdown tables here too')
    return p.parse_args(argv)


def _source(name: str, path: str, split: str):
    from llmvision.datasets.rec import JsonCandidateSource, SyntheticCandidateSource
    if path == 'synthetic':
        return SyntheticCandidateSource(name=name)
    return JsonCandidateSource(path.replace('{split}', split), name=name, missing='empty')


def build_selector(config: str, checkpoint=None):
    """A :class:`RECSelector` from a config file (+ an optional checkpoint)."""
    from mmengine.config import Config
    from mmengine.runner import load_checkpoint

    from llmvision.registry import MODELS
    model = MODELS.build(Config.fromfile(config).model)
    if checkpoint is not None:
        load_checkpoint(model, checkpoint, map_location='cpu', strict=False)
    model.eval()
    return model


def split_tables(args, selectors=None):
    """``{split: (rows, markdown)}``; ``selectors`` maps a row label prefix to a built model."""
    from llmvision.apis import llm_selector
    from llmvision.datasets.rec import build_selector_samples, load_refer_records
    from llmvision.evaluation import accuracy_table, detector_only, format_table, oracle
    from llmvision.models.selectors import BoxListPromptSerializer
    specs = dict(c.split('=', 1) for c in args.candidates)
    groups = [[n] for n in specs] + [e.split('+') for e in args.ensemble]
    for g in groups:
        for n in g:
            if n not in specs:
                raise KeyError(f'--ensemble names {n!r}, not one of --candidates {sorted(specs)}')
    selectors = selectors or {}
    out = {}
    for split in args.splits:
        records = load_refer_records(args.data_root, args.dataset, args.split_by, split,
                                     args.img_prefix)
        if args.max_records is not None:
            records = records[:args.max_records]
        rows = []
        for g in groups:
            label = '+'.join(g)
            sources = [_source(n, specs[n], split) for n in g]
            ser = next(iter(selectors.values())).serializer if selectors else \
                BoxListPromptSerializer()
            samples, _ = build_selector_samples(records, sources, ser, train=False)
            methods = {f'detector-only ({label})': detector_only}
            for name, model in selectors.items():
                methods[f'{name} ({label})'] = llm_selector(model, args.batch_size)
            methods[f'oracle ({label})'] = oracle
            rows += accuracy_table(samples, methods, args.iou_thr, args.inclusive)
        out[split] = (rows, format_table(f'{args.dataset} {split}', rows, args.iou_thr,
                                         args.inclusive))
    return out


def main(argv=None):
    args = parse_args(argv)
    selectors = {}
    if args.config and args.zero_shot:
        selectors['zero-shot LLM'] = build_selector(args.config)
    if args.config and args.checkpoint:
        selectors['fine-tuned LLM'] = build_selector(args.config, args.checkpoint)
    if args.checkpoint and not args.config:
        raise ValueError('--checkpoint needs --config')
    tables = split_tables(args, selectors)
    text = '\n'.join(md for _, md in tables.values())
    print(text)
    for name, model in selectors.items():
        print(f'{name} selection outcomes: {dict(model.stats)}')
    if args.out:
        os.makedirs(osp.dirname(osp.abspath(args.out)), exist_ok=True)
        tmp = args.out + '.tmp'
        with open(tmp, 'w') as f:
            f.write(text)
        os.replace(tmp, args.out)
    return tables


if __name__ == '__main__':
    main()
