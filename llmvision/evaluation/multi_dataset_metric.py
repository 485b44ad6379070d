"""Several datasets evaluated in one run (ODinW style): each sample goes to its dataset's metric.

A sample is routed by its metainfo ``dataset_key`` (default ``'dataset_name'``), which must equal one
of ``dataset_prefixes``. Each sub-metric (any BaseMetric config, e.g. ``CocoMetric`` with that dataset's
``ann_file``) sees only its own samples; results travel through this wrapper's ``self.results``, so
mmengine's cross-rank collection works unchanged. Output: ``{prefix}/{key}`` per dataset and
``mean/{key}`` over the datasets for every key they all report.
"""
from collections import defaultdict
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.evaluator import BaseMetric

from llmvision.registry import METRICS

from .predictions import get_field


@METRICS.register_module()
class MultiDatasetMetric(BaseMetric):
    """Args:
        metrics: one metric (config dict or instance) per dataset.
        dataset_prefixes: one name per dataset (same order), also the routing value.
        dataset_key: the metainfo key that names a sample's dataset.
    """
    default_prefix = 'multi'

    def __init__(self, metrics: Sequence, dataset_prefixes: Sequence[str], dataset_key: str = 'dataset_name',
                 collect_device: str = 'cpu', prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        if len(metrics) != len(dataset_prefixes):
            raise ValueError(f'{len(metrics)} metrics but {len(dataset_prefixes)} dataset_prefixes')
        if len(set(dataset_prefixes)) != len(dataset_prefixes):
            raise ValueError(f'dataset_prefixes must be unique: {list(dataset_prefixes)}')
        self.metrics = [m if isinstance(m, BaseMetric) else METRICS.build(m) for m in metrics]
        self.dataset_prefixes = list(dataset_prefixes)
        self.dataset_key = dataset_key

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            name = get_field(s, self.dataset_key)
            if name not in self.dataset_prefixes:
                raise ValueError(f'image {get_field(s, "img_id")}: metainfo {self.dataset_key}={name!r} is not '
                                 f'one of {self.dataset_prefixes}')
            i = self.dataset_prefixes.index(name)
            sub = self.metrics[i]
            sub.process(None, [s])
            self.results.extend((i, r) for r in sub.results)
            sub.results.clear()

    def compute_metrics(self, results: List) -> Dict[str, float]:
        groups = defaultdict(list)
        for i, r in results:
            groups[i].append(r)
        out, per = {}, []
        for i, (name, metric) in enumerate(zip(self.dataset_prefixes, self.metrics)):
            if i not in groups:
                continue
            m = metric.compute_metrics(groups[i])
            per.append(m)
            out.update({f'{name}/{k}': v for k, v in m.items()})
        if per:
            common = set(per[0]).intersection(*per[1:])
            for k in sorted(common):
                out[f'mean/{k}'] = float(np.mean([m[k] for m in per]))
        return out
