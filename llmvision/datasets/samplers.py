"""Batch sampler grouping images of the same orientation (landscape ``w >= h`` vs portrait)."""
from typing import Iterator, List

from torch.utils.data import BatchSampler, Sampler

from ..registry import DATA_SAMPLERS


@DATA_SAMPLERS.register_module()
class AspectRatioBatchSampler(BatchSampler):
    """Yield batches whose images are all landscape or all portrait (less padding).

    Indices come from ``sampler`` in its order and go to one of two buckets by the data info's
    ``width``/``height``; a bucket is yielded as soon as it holds ``batch_size`` indices. At the
    end the leftovers of both buckets are yielded together in ``batch_size`` chunks (mixed
    orientation), unless ``drop_last``.

    Args:
        sampler: an index sampler over a dataset with ``get_data_info(idx)`` giving ``width``/``height``.
        batch_size: images per batch.
        drop_last: drop the final incomplete batch.
    """

    def __init__(self, sampler: Sampler, batch_size: int, drop_last: bool = False):
        if not isinstance(batch_size, int) or batch_size <= 0:
            raise ValueError(f'batch_size must be a positive int, got {batch_size!r}')
        dataset = getattr(sampler, 'dataset', None)
        if dataset is None or not hasattr(dataset, 'get_data_info'):
            raise TypeError('AspectRatioBatchSampler needs a sampler with a .dataset having get_data_info()')
        self.sampler = sampler
        self.batch_size = batch_size
        self.drop_last = drop_last

    def _is_portrait(self, idx: int) -> bool:
        info = self.sampler.dataset.get_data_info(idx)
        return info['width'] < info['height']

    def __iter__(self) -> Iterator[List[int]]:
        buckets: List[List[int]] = [[], []]
        for idx in self.sampler:
            bucket = buckets[int(self._is_portrait(idx))]
            bucket.append(idx)
            if len(bucket) == self.batch_size:
                yield bucket[:]
                del bucket[:]
        left = buckets[0] + buckets[1]
        while left:
            if len(left) < self.batch_size and self.drop_last:
                return
            yield left[:self.batch_size]
            left = left[self.batch_size:]

    def __len__(self) -> int:
        n = len(self.sampler)
        return n // self.batch_size if self.drop_last else (n + self.batch_size - 1) // self.batch_size
