"""Candidates from a cache file written by any external detector or VLM."""
import logging
from collections import Counter
from typing import Dict, Optional

import torch
from mmengine.logging import print_log

from llmvision.registry import TASK_UTILS
from llmvision.structures.candidates import CandidateSet

from .candidate_file import iter_candidate_records, parse_candidate_record


@TASK_UTILS.register_module()
class JsonCandidateSource:
    """Look candidates up by record key in a json / jsonl candidate file.

    Args:
        path: the file (format in :mod:`.candidate_file`).
        source: keep only records of this source; ``None`` accepts a file with one source.
        name: rename the source in prompts (default: the source name in the file).
        missing: ``'error'`` (a key absent from the file raises) or ``'empty'`` (zero
            candidates, counted in :attr:`stats`).

    Call with a record (dict with ``key``, see :mod:`.refer_records`) -> :class:`CandidateSet`.
    """

    def __init__(self, path: str, source: Optional[str] = None, name: Optional[str] = None,
                 missing: str = 'error'):
        if missing not in ('error', 'empty'):
            raise ValueError(f"missing must be 'error' or 'empty', got {missing!r}")
        self.path, self.missing = path, missing
        self.stats: Counter = Counter()
        table: Dict[str, CandidateSet] = {}
        sources = set()
        for where, rec in iter_candidate_records(path):
            key, cands = parse_candidate_record(where, rec, default_source=source or 'unknown')
            if source is not None and cands.source != source:
                continue
            sources.add(cands.source)
            if key in table:
                self.stats['duplicate_keys'] += 1
                continue
            table[key] = cands
        if len(sources) > 1:
            raise ValueError(f'{path} holds several sources {sorted(sources)}: pick one with '
                             'source=... (one JsonCandidateSource per source for ensembling)')
        self.table = table
        self.name = name or (sources.pop() if sources else (source or 'unknown'))
        if self.stats['duplicate_keys']:
            print_log(f'{path}: {self.stats["duplicate_keys"]} duplicate keys (first kept)',
                      logger='current', level=logging.WARNING)

    def __len__(self) -> int:
        return len(self.table)

    def keys(self):
        return self.table.keys()

    def __call__(self, record: dict) -> CandidateSet:
        key = record['key']
        cands = self.table.get(key)
        if cands is None:
            if self.missing == 'error':
                raise KeyError(f'{self.path}: no candidates for key {key!r} '
                               "(set missing='empty' to count and continue)")
            self.stats['missing_keys'] += 1
            return CandidateSet(self.name, torch.zeros(0, 4), [], None)
        return CandidateSet(self.name, cands.bboxes.clone(), list(cands.labels),
                            None if cands.scores is None else cands.scores.clone())
