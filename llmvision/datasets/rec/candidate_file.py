"""Candidate cache files: one JSON object per line (jsonl), or a json list / dict.

Line format (what ``tools/rec_candidates.py`` writes and :class:`JsonCandidateSource` reads)::

    {"key": "<img_id>_<ref_id>_<sent_id>", "source": "grounding_dino",
     "bboxes": [[x1, y1, x2, y2], ...], "labels": ["red circle", ...], "scores": [0.9, ...]}

Boxes are pixel xyxy in the original image; ``scores`` is optional. A ``.json`` file may hold a
list of such records, ``{"source": name, "candidates": [...]}`` or ``{key: record}``.
"""
import json
import os
import os.path as osp
from typing import Dict, Iterator, Set, Tuple

from llmvision.structures.candidates import CandidateSet


def iter_candidate_records(path: str) -> Iterator[Tuple[str, dict]]:
    """Yield ``(where, record)`` with ``where = 'file:line'`` (or ``'file[i]'`` for json)."""
    if not osp.isfile(path):
        raise FileNotFoundError(f'candidate file {path} not found')
    if path.endswith('.jsonl'):
        with open(path) as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    rec = json.loads(line)
                except json.JSONDecodeError as e:
                    raise ValueError(f'{path}:{lineno}: not valid JSON ({e.msg})') from None
                yield f'{path}:{lineno}', rec
        return
    with open(path) as f:
        data = json.load(f)
    default_source = None
    if isinstance(data, dict) and 'candidates' in data:
        default_source, data = data.get('source'), data['candidates']
    if isinstance(data, dict):
        data = [dict(v, key=k) for k, v in data.items()]
    if not isinstance(data, list):
        raise ValueError(f'{path}: expected a list of candidate records, a dict key -> record, '
                         'or {"source", "candidates"}')
    for i, rec in enumerate(data):
        if default_source is not None and isinstance(rec, dict):
            rec.setdefault('source', default_source)
        yield f'{path}[{i}]', rec


def parse_candidate_record(where: str, rec, default_source: str) -> Tuple[str, CandidateSet]:
    """``(key, CandidateSet)`` of one record; errors name ``where``."""
    if not isinstance(rec, dict):
        raise ValueError(f'{where}: candidate record must be a JSON object')
    if 'key' not in rec:
        raise KeyError(f'{where}: candidate record has no "key"')
    return str(rec['key']), CandidateSet.from_dict(rec, default_source, where)


def done_keys(path: str) -> Set[Tuple[str, str]]:
    """``{(key, source)}`` already in a jsonl cache (empty if the file does not exist).

    A truncated last line (a run killed mid-write) is ignored, so a resumed run redoes it.
    """
    out = set()
    if not osp.isfile(path):
        return out
    with open(path) as f:
        for line in f:
            try:
                rec = json.loads(line)
            except json.JSONDecodeError:
                continue
            out.add((str(rec.get('key')), str(rec.get('source'))))
    return out


def repair_tail(path: str) -> None:
    """Cut a partial last line (no trailing newline) left by an interrupted writer."""
    if not osp.isfile(path) or os.path.getsize(path) == 0:
        return
    with open(path, 'rb+') as f:
        data = f.read()
        if data.endswith(b'\n'):
            return
        f.seek(0)
        f.truncate(data.rfind(b'\n') + 1)


def candidate_line(key: str, cands: CandidateSet, extra: Dict = None) -> str:
    """One jsonl line (with trailing newline) for ``key``."""
    rec = dict(key=key, **cands.to_dict())
    if extra:
        rec.update(extra)
    return json.dumps(rec) + '\n'
