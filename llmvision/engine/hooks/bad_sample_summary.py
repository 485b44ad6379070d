"""At the end of training, one log line with the number of skipped samples per reason.

Datasets built with ``on_bad_sample='skip'`` log each skip as it happens; this hook adds the
total, so a run that silently lost a fifth of its images to unreadable files says so at the end::

    skipped samples (train): 7 = missing image 4, unreadable image 2, bad box 1

Counts come from :meth:`llmvision.datasets.bad_samples.BadSamplePolicy.skipped_by_reason` of
every dataset in the train dataloader (``ConcatDataset`` / wrappers walked), including what
dataloader workers counted, summed over ranks.
"""
from typing import Dict

import torch
from mmengine.hooks import Hook
from mmengine.logging import print_log

from llmvision.registry import HOOKS


def _policies(dataset, seen=None):
    """The ``BadSamplePolicy`` of ``dataset`` and of the datasets it wraps."""
    seen = set() if seen is None else seen
    if dataset is None or id(dataset) in seen:
        return []
    seen.add(id(dataset))
    found = [dataset.bad_samples] if hasattr(getattr(dataset, 'bad_samples', None), 'skipped_by_reason') else []
    for child in list(getattr(dataset, 'datasets', None) or []) + [getattr(dataset, 'dataset', None)]:
        found += _policies(child, seen)
    return found


def skipped_by_reason(dataset) -> Dict[str, int]:
    """``{reason: count}`` summed over ``dataset`` and the datasets it wraps (this process)."""
    from llmvision.datasets.bad_samples import SKIP_REASONS
    total = dict.fromkeys(SKIP_REASONS, 0)
    for policy in _policies(dataset):
        for reason, count in policy.skipped_by_reason().items():
            total[reason] += count
    return total


def _sum_over_ranks(counts: Dict[str, int]) -> Dict[str, int]:
    import torch.distributed as dist
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return counts
    device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
    values = torch.tensor(list(counts.values()), dtype=torch.int64, device=device)
    dist.all_reduce(values)
    return dict(zip(counts, values.tolist()))


def format_skips(counts: Dict[str, int], split: str = 'train') -> str:
    """``'skipped samples (train): 3 = missing image 2, bad box 1'`` (``... : 0`` when none)."""
    kept = sorted(((r, n) for r, n in counts.items() if n), key=lambda item: (-item[1], item[0]))
    if not kept:
        return f'skipped samples ({split}): 0'
    return f'skipped samples ({split}): {sum(n for _, n in kept)} = ' + ', '.join(f'{r} {n}' for r, n in kept)


@HOOKS.register_module()
class BadSampleSummaryHook(Hook):
    """Log the number of skipped training samples per reason when training ends."""

    priority = 'VERY_LOW'

    def after_train(self, runner) -> None:
        loader = runner.train_dataloader
        counts = _sum_over_ranks(skipped_by_reason(getattr(loader, 'dataset', None)))
        print_log(format_skips(counts), logger='current')
