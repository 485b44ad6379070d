"""Cache REC candidates of one dataset split to jsonl (resumable).

    python tools/rec_candidates.py SOURCE_CONFIG --data-root data/refcoco_refer --dataset refcoco \
        --split-by unc --split val --img-prefix data/coco/train2014 --out work_dirs/cands_val.jsonl

``SOURCE_CONFIG`` is a pure-Python config with ``candidate_source = dict(type=..., ...)`` (for
example a :class:`DetectorCandidateSource` around a Grounding-DINO config + checkpoint), or the
word ``synthetic`` for :class:`SyntheticCandidateSource` (tests, the tiny pipeline). Keys already
in ``--out`` (same source name) are skipped, so an interrupted run continues where it stopped;
each line is flushed as soon as it is computed.
"""
import argparse
import os.path as osp
import sys

sys.path.insert(0, osp.dirname(osp.dirname(osp.abspath(__file__))))

from mmengine.config import DictAction  # noqa: E402

import llmvision  # noqa: E402,F401  (mmengine compatibility patches)


def parse_args(argv=None):
    p = argparse.ArgumentParser(description='Cache REC candidates for a dataset split')
    p.add_argument('source', help="config file defining `candidate_source`, or 'synthetic'")
    p.add_argument('--data-root', required=True, help='folder holding <dataset>/ (refer layout)')
    p.add_argument('--dataset', default='refcoco')
    p.add_argument('--split-by', default='unc')
    p.add_argument('--split', default='val')
    p.add_argument('--img-prefix', default=None, help='image folder (default <root>/<dataset>/images)')
    p.add_argument('--out', required=True, help='output .jsonl (appended to when it exists)')
    p.add_argument('--max-records', type=int, default=None)
    p.add_argument('--cfg-options', nargs='+', action=DictAction, default=None,
                   help='key=value overrides of the source config')
    return p.parse_args(argv)


def build_source(spec: str, cfg_options=None):
    """``'synthetic'`` or a config file with ``candidate_source`` -> the source object."""
    from llmvision.datasets.rec import SyntheticCandidateSource
    from llmvision.utils.hf_builder import build_object
    if spec == 'synthetic':
        return SyntheticCandidateSource()
    from mmengine.config import Config
    cfg = Config.fromfile(spec)
    if cfg_options:
        cfg.merge_from_dict(cfg_options)
    if 'candidate_source' not in cfg:
        raise KeyError(f'{spec}: the config defines no `candidate_source`')
    return build_object(cfg.candidate_source.to_dict() if hasattr(cfg.candidate_source, 'to_dict')
                        else cfg.candidate_source)


def cache_candidates(source, records, out: str, progress: bool = True) -> dict:
    """Append candidates of ``records`` missing from ``out``; returns ``dict(done, skipped)``."""
    import os

    from tqdm import tqdm

    from llmvision.datasets.rec import candidate_line, done_keys, repair_tail
    os.makedirs(osp.dirname(osp.abspath(out)), exist_ok=True)
    repair_tail(out)
    name = getattr(source, 'name', None)
    have = {k for k, s in done_keys(out) if name is None or s == name}
    todo = [r for r in records if r['key'] not in have]
    with open(out, 'a') as f:
        for rec in tqdm(todo, desc=f'candidates -> {osp.basename(out)}', disable=not progress):
            f.write(candidate_line(rec['key'], source(rec),
                                   extra=dict(expression=rec['expression'], img_id=rec['img_id'])))
            f.flush()
    return dict(done=len(todo), skipped=len(records) - len(todo))


def main(argv=None):
    args = parse_args(argv)
    from llmvision.datasets.rec import load_refer_records
    records = load_refer_records(args.data_root, args.dataset, args.split_by, args.split,
                                 args.img_prefix)
    if args.max_records is not None:
        records = records[:args.max_records]
    stats = cache_candidates(build_source(args.source, args.cfg_options), records, args.out)
    print(f'{args.out}: wrote {stats["done"]}, skipped {stats["skipped"]} already cached')
    return stats


if __name__ == '__main__':
    main()
