"""Generate the synthetic grounding dataset (images, ODVG, LVIS, RefCOCO, VQA, tokenizers) and print its summary.

Example::

    python tools/make_synthetic_dataset.py --out data/synthetic --seed 0 --num-train 200 --num-val 50

The VQA set (LLaVA conversation json, one question per record) is written to ``vqa/train.json`` and
``vqa/val.json``; its question counts per type are printed after the summary. The VQA it-learns set
(``configs/llava/llava_tiny_synthetic.py``) is drawn with uniform categories on plain / gradient backgrounds::

    python tools/make_synthetic_dataset.py --out data/synthetic_vqa --num-train 8000 --num-val 300 \
        --image-size 64 64 --categories uniform --backgrounds plain gradient --max-objects 4

``--ref-vlm`` adds the REF-VLM
conversations (``ref_vlm/{train,val}.json``, REC / detection / grounded description / keypoints).
"""
import argparse
import json
import os.path as osp
import sys
import time

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from llmvision.datasets.synthetic import make_ref_vlm_set, make_synthetic_dataset  # noqa: E402
from llmvision.datasets.synthetic.backgrounds import KINDS  # noqa: E402
from llmvision.datasets.synthetic.generator import CATEGORY_DISTRIBUTIONS  # noqa: E402


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--out', default='data/synthetic', help='output folder (created)')
    parser.add_argument('--seed', type=int, default=0)
    parser.add_argument('--num-train', type=int, default=200)
    parser.add_argument('--num-val', type=int, default=50)
    parser.add_argument('--image-size', type=int, nargs=2, default=(256, 320), metavar=('H', 'W'))
    parser.add_argument('--categories', choices=CATEGORY_DISTRIBUTIONS, default='zipf',
                        help='category frequencies: LVIS-like long tail (default) or uniform (the VQA set: with a '
                             'skewed prior the question text alone answers many questions)')
    parser.add_argument('--backgrounds', nargs='+', choices=KINDS, default=None,
                        help='background kinds to draw from (default: all)')
    parser.add_argument('--max-objects', type=int, default=6, help='at most this many objects per scene (1-6)')
    parser.add_argument('--ref-vlm', action='store_true',
                        help='also write REF-VLM conversations (ref_vlm/{train,val}.json + COCO val ground truth)')
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    start = time.perf_counter()
    paths = make_synthetic_dataset(args.out, seed=args.seed, num_train=args.num_train,
                                   num_val=args.num_val, image_size=tuple(args.image_size),
                                   categories=args.categories, backgrounds=args.backgrounds,
                                   max_objects=args.max_objects)
    print(paths.summary())
    for split, path in (('train', paths.vqa_train), ('val', paths.vqa_val)):
        counts = {}
        for rec in json.loads(path.read_text(encoding='utf-8')):
            counts[rec['question_type']] = counts.get(rec['question_type'], 0) + 1
        print(f'  vqa {split}: {path} ({sum(counts.values())} questions: '
              + ', '.join(f'{k} {v}' for k, v in counts.items()) + ')')
    if args.ref_vlm:
        for name, path in make_ref_vlm_set(args.out, seed=args.seed).items():
            kinds = {}
            if name in ('train', 'val'):
                for rec in json.loads(path.read_text(encoding='utf-8')):
                    kinds[rec['question_type']] = kinds.get(rec['question_type'], 0) + 1
            print(f'  ref_vlm {name}: {path}' + (f' ({kinds})' if kinds else ''))
    print(f'done in {time.perf_counter() - start:.1f} s')


if __name__ == '__main__':
    main()
