"""Does a multimodal LLM learn the synthetic VQA set? Train, evaluate, evaluate with noise images, print per type.

Runs ``tools/train.py CONFIG`` (unless ``--checkpoint`` is given), then ``tools/test.py`` twice on the val split:
with the real images and with every image replaced by uniform noise (``image_ablation='noise'``). Prints one row
per question type: n, the text-only prior (best constant training answer), the model, the model with noise
images; and ``overall`` (every type but ``caption``). The image matters when the model beats the prior and the
noise-image score falls back to about the prior. Also writes ``WORK_DIR/lmm_learning.json``.

    python benchmarks/lmm_learning.py --config configs/llava/llava_tiny_synthetic.py \\
        [--stage0 configs/llava/tiny_vision_pretrain_synthetic.py] [--data data/synthetic_vqa] \\
        [--cfg-options train_cfg.max_iters=500 ...] [--work-dir work_dirs/lmm_learning]

``--stage0`` first trains the vision tower the tiny configs load (its wall time is reported with the total).

``--data DIR`` points every dataset, tokenizer and the prior at another generated set (made by
``tools/make_synthetic_dataset.py --out DIR ...``). Reused by the VLoRA / LLaVolta comparisons: pass their
configs with ``--config``.
"""
import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
TYPES = ('number', 'exist', 'colour', 'count', 'relation', 'caption')


def data_options(data: str) -> list:
    """``--cfg-options`` that move the synthetic VQA config onto the set generated in ``data``."""
    d = data.rstrip('/') + '/'
    opts = [f'model.tokenizer={d}llm_tokenizer', f'test_evaluator.train_ann_file={d}vqa/train.json',
            f'val_evaluator.train_ann_file={d}vqa/train.json']
    for loader in ('train_dataloader', 'val_dataloader', 'test_dataloader'):
        opts += [f'{loader}.dataset.data_root={d}', f'{loader}.dataset.encoder.tokenizer={d}llm_tokenizer']
    return opts


def run(cmd: list, log: Path, threads: int = 1) -> float:
    """Run ``cmd`` from the repo root with its output in ``log``; returns the wall time (s); raises on failure."""
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(ROOT), OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    with open(log, 'w') as f:
        proc = subprocess.run(cmd, cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, env=env)
    if proc.returncode:
        tail = log.read_text(errors='replace').splitlines()[-30:]
        raise RuntimeError(f'{" ".join(cmd[:3])} failed (exit {proc.returncode}); log {log}:\n' + '\n'.join(tail))
    return time.perf_counter() - start


def newest_metrics(work_dir: Path) -> dict:
    """Metrics json mmengine's test run writes at ``work_dir/<timestamp>/<timestamp>.json``."""
    files = sorted(p for p in work_dir.glob('*/*.json') if p.stem == p.parent.name)
    if not files:
        raise FileNotFoundError(f'no metrics json under {work_dir}')
    return json.loads(files[-1].read_text())


def cfg_options(opts: list) -> list:
    """``['--cfg-options', *opts]``, or nothing when there are no overrides (argparse wants >= 1 value)."""
    return ['--cfg-options', *opts] if opts else []


def evaluate(config: str, ckpt: str, opts: list, work_dir: Path, name: str, threads: int = 1) -> dict:
    wd = work_dir / name
    wd.mkdir(parents=True, exist_ok=True)
    secs = run([sys.executable, 'tools/test.py', config, ckpt, '--work-dir', str(wd), *cfg_options(opts)],
               work_dir / f'{name}.log', threads)
    metrics = newest_metrics(wd)
    metrics['_wall_s'] = secs
    return metrics


def table(image: dict, noise: dict) -> str:
    """Markdown table: type | n | prior | model | noise image (percent)."""
    rows = ['| question type | prior (text only) | model | model, noise image |', '|---|---|---|---|']
    for t in TYPES + ('overall',):
        if f'vqa/{t}' not in image:
            continue
        cells = [image.get(f'vqa/prior/{t}'), image[f'vqa/{t}'], noise.get(f'vqa/{t}') if noise else None]
        rows.append(f'| {t}{" (excl. caption)" if t == "overall" else ""} | '
                    + ' | '.join('-' if v is None else f'{v:.1f}' for v in cells) + ' |')
    return '\n'.join(rows)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument('--config', default='configs/llava/llava_tiny_synthetic.py')
    parser.add_argument('--data', help='generated synthetic set to use instead of the config data_root')
    parser.add_argument('--cfg-options', nargs='+', default=[], help='key=value overrides for train and test')
    parser.add_argument('--work-dir', default='work_dirs/lmm_learning')
    parser.add_argument('--checkpoint', help='evaluate this checkpoint (no training)')
    parser.add_argument('--stage0', help='config trained first with tools/train.py (its default work dir), e.g. '
                        'configs/llava/tiny_vision_pretrain_synthetic.py: the vision tower the tiny configs load; '
                        'its wall time is added to the total')
    parser.add_argument('--no-noise', action='store_true', help='skip the noise-image evaluation')
    parser.add_argument('--threads', type=int, default=1,
                        help='torch/OpenMP threads of the runs (1: on a shared 2-core machine one thread per job '
                             'was ~10x faster per step than 2, which spin-wait on each other)')
    args = parser.parse_args(argv)

    work_dir = Path(args.work_dir).resolve()
    work_dir.mkdir(parents=True, exist_ok=True)
    opts = (data_options(args.data) if args.data else []) + list(args.cfg_options)
    result = dict(config=args.config, cfg_options=opts, threads=args.threads)
    ckpt = args.checkpoint
    if args.stage0:
        result['stage0_config'] = args.stage0
        result['stage0_wall_s'] = run([sys.executable, 'tools/train.py', args.stage0], work_dir / 'stage0.log',
                                      args.threads)
        print(f'stage 0 ({args.stage0}) trained in {result["stage0_wall_s"]:.0f} s', flush=True)
    if ckpt is None:
        result['train_wall_s'] = run([sys.executable, 'tools/train.py', args.config, '--work-dir', str(work_dir),
                                      '--no-validate', *cfg_options(opts)], work_dir / 'train.log', args.threads)
        ckpt = (work_dir / 'last_checkpoint').read_text().strip()
        total = result['train_wall_s'] + result.get('stage0_wall_s', 0.0)
        print(f'trained in {result["train_wall_s"]:.0f} s (with stage 0: {total:.0f} s) -> {ckpt}', flush=True)
    result['checkpoint'] = ckpt
    result['image'] = evaluate(args.config, ckpt, opts, work_dir, 'eval_image', args.threads)
    noise_opts = opts + ['test_dataloader.dataset.image_ablation=noise']
    result['noise'] = None if args.no_noise else evaluate(args.config, ckpt, noise_opts, work_dir, 'eval_noise',
                                                          args.threads)
    text = table(result['image'], result['noise'])
    result['table'] = text
    (work_dir / 'lmm_learning.json').write_text(json.dumps(result, indent=1) + '\n')
    print(text)
    m = result['image']
    if 'vqa/gain' in m:
        print(f'gain over the text-only prior: {m["vqa/gain"]:+.1f} points (overall without caption)')
    return result


if __name__ == '__main__':
    main()
