"""LVIS fixed-AP evaluation speed: lvis-api 0.5.3 vs faster-coco-eval (LVIS mode) vs ours.

Generates a seeded LVIS-format set (default 5,000 images x 1,203 categories with r/c/f frequencies,
neg / not-exhaustive ids, ~115k detections), applies the fixed-AP protocol (top 10,000 detections per
category, no per-image cap, max_dets=-1) and times each evaluator end to end from the json files
(annotation load + result load + evaluation). Prints the timings, our speed-up over each peer and the
metric values side by side (they must be identical).

    python benchmarks/eval_speed.py                       # the full comparison (lvis-api takes ~1-2 min)
    python benchmarks/eval_speed.py --num-images 500 --num-categories 200   # quick look
"""
import argparse
import contextlib
import copy
import io
import json
import os
import tempfile
import time
from collections import defaultdict

import numpy as np

from llmvision.evaluation import build_ground_truth, evaluate_boxes, load_results_json, results_to_detections
from llmvision.evaluation.predictions import top_k_per_category
from llmvision.evaluation.synthetic import make_detection_set

KEYS = ('AP', 'AP50', 'AP75', 'APs', 'APm', 'APl', 'APr', 'APc', 'APf')


def fixed_ap_input(dets, k):
    """The fixed-AP protocol as Dave et al.'s script applies it to a result list."""
    by_cat = defaultdict(list)
    for d in dets:
        by_cat[d['category_id']].append(d)
    return [d for anns in by_cat.values() for d in sorted(anns, key=lambda a: a['score'], reverse=True)[:k]]


def run_lvis_api(ann_file, res_file):
    np.float = float  # lvis-api 0.5.3 uses np.float (removed in numpy 1.24); shim for this script only
    from lvis import LVIS, LVISEval, LVISResults
    gt = LVIS(ann_file)
    ev = LVISEval(gt, LVISResults(gt, res_file, max_dets=-1), 'bbox')
    ev.params.max_dets = -1
    ev.run()
    return {k: float(ev.results[k]) for k in KEYS}


def run_faster_coco_eval(ann_file, res_file, max_per_image):
    from faster_coco_eval import COCO, COCOeval_faster
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO(ann_file)
        dt = gt.loadRes(res_file)
        ev = COCOeval_faster(gt, dt, 'bbox', lvis_style=True, print_function=lambda *a, **k: None)
        ev.params.maxDets = [max_per_image]  # no per-image cap (LVIS max_dets=-1); it allocates by this
        ev.run()
    s = ev.stats_as_dict
    names = {'AP': 'AP_all', 'AP50': 'AP_50', 'AP75': 'AP_75', 'APs': 'AP_small', 'APm': 'AP_medium',
             'APl': 'AP_large', 'APr': 'APr', 'APc': 'APc', 'APf': 'APf'}
    return {k: float(s[v]) for k, v in names.items()}


def run_ours(ann_file, res_file, k):
    gt = build_ground_truth(ann_file, 'lvis')
    dt = top_k_per_category(results_to_detections(load_results_json(res_file), gt, res_file), k)
    return {key: float(v) for key, v in evaluate_boxes(gt, dt, 'lvis').stats.items() if key in KEYS}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument('--num-images', type=int, default=5000)
    ap.add_argument('--num-categories', type=int, default=1203)
    ap.add_argument('--gt-per-image', type=float, default=8.0)
    ap.add_argument('--fp-per-image', type=float, default=12.0)
    ap.add_argument('--max-dets-per-cat', type=int, default=10000)
    ap.add_argument('--seed', type=int, default=0)
    ap.add_argument('--skip', nargs='*', default=[], choices=['lvis-api', 'faster-coco-eval'])
    args = ap.parse_args()

    t0 = time.perf_counter()
    ds, dets = make_detection_set(args.num_images, args.num_categories, seed=args.seed, protocol='lvis',
                                  gt_per_image=args.gt_per_image, fp_per_image=args.fp_per_image)
    print(f'synthetic set: {len(ds["images"])} images, {len(ds["categories"])} categories, '
          f'{len(ds["annotations"])} gt boxes, {len(dets)} detections ({time.perf_counter() - t0:.1f} s)')
    with tempfile.TemporaryDirectory() as tmp:
        ann_file, all_file, fixed_file = (os.path.join(tmp, n) for n in ('gt.json', 'all.json', 'fixed.json'))
        with open(ann_file, 'w') as f:
            json.dump(ds, f)
        with open(all_file, 'w') as f:
            json.dump(dets, f)
        with open(fixed_file, 'w') as f:  # peers get the protocol applied to their input
            fixed = fixed_ap_input(copy.deepcopy(dets), args.max_dets_per_cat)
            json.dump(fixed, f)
        max_per_image = int(np.bincount([d['image_id'] for d in fixed]).max())

        runs = [('ours', lambda: run_ours(ann_file, all_file, args.max_dets_per_cat))]
        if 'faster-coco-eval' not in args.skip:
            runs.append(('faster-coco-eval', lambda: run_faster_coco_eval(ann_file, fixed_file, max_per_image)))
        if 'lvis-api' not in args.skip:
            runs.append(('lvis-api', lambda: run_lvis_api(ann_file, fixed_file)))
        times, values = {}, {}
        for name, fn in runs:
            t = time.perf_counter()
            values[name] = fn()
            times[name] = time.perf_counter() - t
            print(f'{name:>17}: {times[name]:7.2f} s')

    for name in times:
        if name != 'ours':
            print(f'speed-up of ours over {name}: {times[name] / times["ours"]:.1f}x')
    names = list(values)
    print('\n' + f'{"metric":>6} ' + ' '.join(f'{n:>17}' for n in names))
    for key in KEYS:
        print(f'{key:>6} ' + ' '.join(f'{values[n][key]:17.6f}' for n in names))
    worst = max((abs(values[n][k] - values['ours'][k]) for n in names for k in KEYS), default=0.0)
    print(f'max |difference| to ours: {worst:.2e}' + ('' if worst < 1e-9 else '  <-- MISMATCH'))


if __name__ == '__main__':
    main()
