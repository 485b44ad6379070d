"""Does the caption loss help the detector? Detector-only vs LLMDet with the same budget.

Trains ``configs/grounding_dino/grounding_dino_tiny_synthetic.py`` (detector only) and
``configs/llmdet/llmdet_tiny_synthetic.py`` (the same detector + LLM captioner) on the SAME data
(the grounding form of a synthetic set: region phrases + "conversations" descriptions), the same
schedule and the same seeds, one run after the other (never in parallel: two trainings on a
2-core machine slow each other ~5x), then prints LVIS fixed AP / AP50 on the val split per seed
and the mean. The detector starts from identical weights and random stream in both runs
(``LLMDet`` builds its captioner from a forked RNG), so the difference is the caption loss.

    python benchmarks/llmdet_cotraining_gain.py --data /tmp/syn600v --seeds 42 1 \\
        [--iters 1000] [--work-dir /tmp/cotrain]

The data directory comes from ``python tools/make_synthetic_dataset.py --out DIR --num-train 600
--num-val 200``. Each run takes ~4 min (detector) / ~5 min (LLMDet) on 2 idle CPU cores.
"""
import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
RUNS = {
    'detector-only': ('configs/grounding_dino/grounding_dino_tiny_synthetic.py', []),
    'LLMDet (det + captions)': ('configs/llmdet/llmdet_tiny_synthetic.py',
                                ['model.captioner.tokenizer={data}/llm_tokenizer']),
}
METRICS = ('lvis_fixed_ap/AP', 'lvis_fixed_ap/AP50')


def common_options(data: str, iters: int, seed: int):
    milestone = int(iters * 0.8)
    return [f'train_dataloader.dataset.data_root={data}/',
            f'val_dataloader.dataset.data_root={data}/',
            f'test_dataloader.dataset.data_root={data}/',
            f'val_evaluator.ann_file={data}/lvis/lvis_v1_val.json',
            f'test_evaluator.ann_file={data}/lvis/lvis_v1_val.json',
            f'model.text_encoder.tokenizer={data}/bert_tokenizer',
            'train_dataloader.dataset.ann_file=odvg/train_grounding.jsonl',
            'train_dataloader.dataset.label_map_file=None',
            f'train_cfg.max_iters={iters}', f'train_cfg.val_interval={iters}',
            f'param_scheduler.1.milestones=[{milestone}]', f'randomness.seed={seed}']


def last_val_metrics(work_dir: Path) -> dict:
    """The last validation record of the newest run's ``vis_data/scalars.json``."""
    runs = sorted(p for p in work_dir.iterdir() if (p / 'vis_data' / 'scalars.json').is_file())
    if not runs:
        raise FileNotFoundError(f'no vis_data/scalars.json under {work_dir}: did the run fail?')
    record = None
    for line in (runs[-1] / 'vis_data' / 'scalars.json').read_text().splitlines():
        row = json.loads(line)
        if METRICS[0] in row:
            record = row
    if record is None:
        raise KeyError(f'{runs[-1]}: no {METRICS[0]} record (validation did not run)')
    return {k: record[k] for k in METRICS}


def train(name: str, seed: int, args) -> dict:
    config, extra = RUNS[name]
    work_dir = Path(args.work_dir) / f'{name.split()[0]}_seed{seed}'
    cmd = [sys.executable, str(ROOT / 'tools/train.py'), config, '--work-dir', str(work_dir),
           '--cfg-options', *common_options(args.data, args.iters, seed),
           *[e.format(data=args.data) for e in extra]]
    log = work_dir.with_suffix('.log')
    work_dir.mkdir(parents=True, exist_ok=True)
    print(f'[{name}, seed {seed}] training ... (log: {log})', flush=True)
    with open(log, 'w') as f:
        rc = subprocess.call(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT)
    if rc != 0:
        raise RuntimeError(f'{name} seed {seed} failed (exit {rc}); see {log}')
    return last_val_metrics(work_dir)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument('--data', required=True, help='synthetic set directory')
    p.add_argument('--seeds', type=int, nargs='+', default=[42])
    p.add_argument('--iters', type=int, default=1000)
    p.add_argument('--work-dir', default='work_dirs/llmdet_cotraining_gain')
    args = p.parse_args(argv)
    args.data = str(Path(args.data).resolve())
    results = {name: [train(name, seed, args) for seed in args.seeds] for name in RUNS}
    print(f'\n### LVIS fixed AP on {args.data} val, {args.iters} iterations, seeds {args.seeds}\n')
    print('| run | ' + ' | '.join(f'AP / AP50 seed {s}' for s in args.seeds) + ' | mean AP | mean AP50 |')
    print('|---|' + '---|' * (len(args.seeds) + 2))
    for name, rows in results.items():
        cells = [f"{r[METRICS[0]]:.3f} / {r[METRICS[1]]:.3f}" for r in rows]
        means = [statistics.mean(r[m] for r in rows) for m in METRICS]
        print(f'| {name} | ' + ' | '.join(cells) + f' | {means[0]:.3f} | {means[1]:.3f} |')


if __name__ == '__main__':
    main()
