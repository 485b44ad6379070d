"""Common base of llmvision's detection/grounding datasets (an mmengine ``BaseDataset``).

A data info (one image or one referring expression) is a dict with mmdet 3.x keys::

    img_path, img_id, height, width,
    text               caption str, or list of category names (custom_entities=True)
    custom_entities    bool
    tokens_positive    per label a list of [start, end) spans in ``text``; None for name lists
    instances          [dict(bbox=[x1, y1, x2, y2] pixel floats, bbox_label=int, ignore_flag=0|1)]
    ... dataset-specific keys (long_caption, phrases, neg_category_ids, ref_id, ...)

The base adds the bad-sample policy (``on_bad_sample='raise'|'skip'``, ``max_bad_samples``):
subclasses parse their entries through :meth:`parse_entries` (or raise :class:`BadSampleError`
while parsing and call :meth:`_bad_sample` with it); image errors raised by the pipeline
(``LoadImageFromFile``) go through the same policy in :meth:`prepare_data`. With ``'skip'`` in
training, mmengine then fetches another random index.
``filter_cfg=dict(filter_empty_gt=True, min_size=0)`` drops images without usable boxes in
training only (logged with its count; this is configuration, not an error).

Randomness: with ``private_rng=True`` (default) the pipeline and mmengine's refetch of another
index draw from a private stream (:class:`llmvision.utils.private_rng.PrivateRNG`, seeded per
process from ``torch.initial_seed()``), so data augmentation does not depend on what the model
drew from the global generators, and a resumed run replays the same samples.
"""
import logging
import os.path as osp
from typing import Callable, Iterable, List, Optional

import numpy as np
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log

from ..utils.private_rng import PrivateRNG
from .bad_samples import BadSampleError, BadSamplePolicy, parse_with_policy


class GroundingBaseDataset(BaseDataset):
    """mmengine ``BaseDataset`` with a bad-sample policy and empty-GT filtering.

    Args:
        on_bad_sample: ``'raise'`` or ``'skip'`` (see :mod:`llmvision.datasets.bad_samples`).
        max_bad_samples: most skips tolerated with ``'skip'``; ``None`` = no limit.
        private_rng: run the pipeline on a private random stream (see the module docstring).
        **kwargs: :class:`mmengine.dataset.BaseDataset` arguments (ann_file, data_root,
            data_prefix=dict(img=...), filter_cfg, pipeline, test_mode, ...).
    """

    def __init__(self, *args, on_bad_sample: str = 'raise', max_bad_samples: Optional[int] = None,
                 private_rng: bool = True, **kwargs):
        self.bad_samples = BadSamplePolicy(on_bad_sample, max_bad_samples)
        self.rng = PrivateRNG() if private_rng else None
        self.num_filtered_empty = 0
        super().__init__(*args, **kwargs)

    @property
    def num_skipped(self) -> int:
        """Bad samples skipped so far in this process (annotation parsing + image loading)."""
        return self.bad_samples.num_skipped

    @property
    def img_prefix(self) -> str:
        """Image folder: ``data_prefix['img']`` (mmdet style) or ``data_prefix['img_path']``."""
        return self.data_prefix.get('img', self.data_prefix.get('img_path', ''))

    def _bad_sample(self, error: BadSampleError, source: str, line: Optional[int] = None) -> None:
        """Attach file/line to ``error`` if missing, then raise or count it."""
        if error.source is None:
            error = BadSampleError(error.reason, source=source, line=line, kind=error.kind)
        self.bad_samples.handle(error)

    def parse_entries(self, entries: Iterable, parse: Callable, source: str,
                      describe: Callable[[int, object], str]) -> List[dict]:
        """``parse(entry)`` -> data info(s) per entry, through this dataset's bad-sample policy
        (see :func:`~llmvision.datasets.bad_samples.parse_with_policy`)."""
        return parse_with_policy(entries, parse, self.bad_samples, source, describe)

    def get_data_info(self, idx: int) -> dict:
        """mmengine's data info, plus ``dataset_name`` (the per-dataset routing key of
        ``MultiDatasetMetric``, e.g. ODinW) and ``rec_heuristic`` (LLMDet's REC inference for the
        samples of a referring-expression set) when the dataset's metainfo sets them."""
        info = super().get_data_info(idx)
        for key in ('dataset_name', 'rec_heuristic'):
            if key in self.metainfo:
                info[key] = self.metainfo[key]
        return info

    def prepare_data(self, idx: int):
        """Run the pipeline; an image error becomes a counted skip (training, mode 'skip')."""
        try:
            if self.rng is None:
                return super().prepare_data(idx)
            with self.rng:
                return super().prepare_data(idx)
        except BadSampleError as error:
            if self.test_mode:
                raise
            if error.kind == 'bad annotation':  # raised by the pipeline: an image problem
                kind = 'missing image' if error.source and not osp.exists(error.source) else 'unreadable image'
                error = BadSampleError(error.reason, source=error.source, line=error.line, kind=kind)
            self.bad_samples.handle(error)
            return None

    def _rand_another(self) -> int:
        """Random index to fetch instead of a skipped sample (from the private stream when enabled)."""
        if self.rng is None:
            return int(np.random.randint(0, len(self)))
        with self.rng:
            return int(np.random.randint(0, len(self)))

    def filter_data(self) -> List[dict]:
        """Drop images with no usable box in training when ``filter_cfg.filter_empty_gt``."""
        if self.test_mode or not self.filter_cfg:
            return self.data_list
        filter_empty = self.filter_cfg.get('filter_empty_gt', False)
        min_size = float(self.filter_cfg.get('min_size', 0))
        kept = []
        for info in self.data_list:
            boxes = [inst['bbox'] for inst in info.get('instances', []) if not inst.get('ignore_flag', 0)]
            boxes = [b for b in boxes if b[2] - b[0] >= min_size and b[3] - b[1] >= min_size]
            if filter_empty and not boxes:
                continue
            kept.append(info)
        self.num_filtered_empty = len(self.data_list) - len(kept)
        if self.num_filtered_empty:
            print_log(f'{type(self).__name__}: filter_empty_gt removed {self.num_filtered_empty} of '
                      f'{len(self.data_list)} images without boxes', logger='current', level=logging.INFO)
        return kept
