"""Training-log analysis (mmdet's analyze_logs): curves and training time from mmengine json logs.

    python tools/analyze_logs.py plot_curve LOG.json [LOG2.json ...] --keys loss lvis_fixed_ap/AP50 \
        [--legend run_a run_b] [--title T] --out curve.png
    python tools/analyze_logs.py cal_train_time LOG.json [...] [--include-outliers]

LOG.json: what a run writes under ``work_dirs/<run>/<timestamp>/vis_data/``: ``scalars.json`` or
``<timestamp>.json``, one json dict per line. Training lines carry ``iter`` (or ``epoch``), ``loss``,
``time``...; validation lines carry the metric keys (``lvis_fixed_ap/AP50``, ...) and ``step``.
The x axis is ``iter`` when a line has it, else ``step``. One subplot per key.
"""
import argparse
import json
from collections import defaultdict
from typing import Dict, List, Tuple

import numpy as np


def load_log(path: str) -> List[dict]:
    """The json lines of a log file (blank lines skipped; a bad line is an error naming it)."""
    records = []
    with open(path) as f:
        for lineno, line in enumerate(f, 1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as err:
                raise ValueError(f'{path}:{lineno}: not a json line: {err}') from None
    return records


def series(records: List[dict], key: str) -> Tuple[np.ndarray, np.ndarray]:
    """``(x, y)`` of ``key`` over the log: x = ``iter`` (training lines) or ``step`` (validation)."""
    xs, ys = [], []
    for r in records:
        if key in r and isinstance(r[key], (int, float)):
            xs.append(r.get('iter', r.get('step', len(xs))))
            ys.append(r[key])
    return np.asarray(xs), np.asarray(ys, dtype=float)


def plot_curve(logs: Dict[str, List[dict]], keys: List[str], out: str, title: str = None) -> None:
    import matplotlib
    matplotlib.use('Agg')
    import matplotlib.pyplot as plt
    fig, axes = plt.subplots(len(keys), 1, figsize=(8, 3 * len(keys)), squeeze=False)
    for ax, key in zip(axes[:, 0], keys):
        found = False
        for name, records in logs.items():
            x, y = series(records, key)
            if len(x):
                found = True
                ax.plot(x, y, marker='o' if len(x) < 20 else None, label=name)
        if not found:
            raise KeyError(f'no log has the key {key!r}; keys: {sorted(all_keys(logs))}')
        ax.set_ylabel(key)
        ax.grid(alpha=0.3)
        ax.legend()
    axes[-1, 0].set_xlabel('iter')
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(out)
    plt.close(fig)
    print(f'saved {out}')


def all_keys(logs: Dict[str, List[dict]]) -> set:
    return {k for records in logs.values() for r in records for k in r}


def train_time(records: List[dict], include_outliers: bool = False) -> dict:
    """Seconds per iteration of the training lines (``time`` and ``iter``/``epoch``).

    The first logged interval (warm-up, data loader start) is dropped unless ``include_outliers``.
    """
    times = [(r.get('iter', r.get('epoch')), r['time']) for r in records
             if 'time' in r and ('iter' in r or 'epoch' in r) and 'loss' in r]
    if not times:
        raise ValueError('no training lines with "time" in this log')
    if not include_outliers and len(times) > 1:
        times = times[1:]
    t = np.array([s for _, s in times])
    return dict(mean=float(t.mean()), std=float(t.std()), slowest=times[int(t.argmax())][0],
                fastest=times[int(t.argmin())][0], num=len(t))


def main(argv=None):
    parser = argparse.ArgumentParser(description='Analyze mmengine json logs')
    sub = parser.add_subparsers(dest='task', required=True)
    p = sub.add_parser('plot_curve', help='plot keys of one or more logs')
    p.add_argument('logs', nargs='+')
    p.add_argument('--keys', nargs='+', default=['loss'])
    p.add_argument('--legend', nargs='+', help='one name per log (default: the file names)')
    p.add_argument('--title')
    p.add_argument('--out', required=True, help='image file (.png, .pdf, ...)')
    t = sub.add_parser('cal_train_time', help='average seconds per iteration')
    t.add_argument('logs', nargs='+')
    t.add_argument('--include-outliers', action='store_true', help='keep the first logged interval')
    args = parser.parse_args(argv)
    if args.task == 'plot_curve':
        names = args.legend or args.logs
        if len(names) != len(args.logs):
            parser.error(f'--legend has {len(names)} names for {len(args.logs)} logs')
        logs = defaultdict(list)
        for name, path in zip(names, args.logs):
            logs[name] = load_log(path)
        plot_curve(logs, args.keys, args.out, args.title)
    else:
        for path in args.logs:
            s = train_time(load_log(path), args.include_outliers)
            print(f'{path}: {s["mean"]:.4f} s/iter (std {s["std"]:.4f}) over {s["num"]} logged '
                  f'intervals; slowest at {s["slowest"]}, fastest at {s["fastest"]}')


if __name__ == '__main__':
    main()
