"""A private random stream for data pipelines.

Transforms (ours and mmcv's) draw from the global ``random``/``numpy``/``torch`` generators. If
the model draws from the same generators, the data a resumed run produces depends on what the
model drew before the interruption, and a resume cannot reproduce the uninterrupted run.
``PrivateRNG`` swaps in the pipeline's own generator states for the duration of a ``with``
block and swaps the global ones back afterwards, so the pipeline's stream advances only when
samples are loaded (which the training loop replays exactly when it skips consumed batches).

The stream is seeded lazily per process from ``torch.initial_seed()``: the runner's seed in the
main process, and mmengine's per-worker seed in data-loader workers.
"""
import os
import random

import numpy as np
import torch


class PrivateRNG:
    """Context manager: ``with rng: pipeline(sample)`` uses a private python/numpy/torch stream."""

    def __init__(self, salt: int = 0):
        self.salt = int(salt)
        self._pid = None
        self._states = None

    def _seed_states(self):
        seed = (torch.initial_seed() * 1000003 + self.salt) % (2**32)
        py = random.Random(seed).getstate()
        npy = np.random.RandomState(seed).get_state()
        th = torch.Generator().manual_seed(seed).get_state()
        return py, npy, th

    def __enter__(self):
        if self._pid != os.getpid():
            self._pid = os.getpid()
            self._states = self._seed_states()
        self._saved = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        py, npy, th = self._states
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(th)
        return self

    def __exit__(self, *exc):
        self._states = (random.getstate(), np.random.get_state(), torch.get_rng_state())
        py, npy, th = self._saved
        random.setstate(py)
        np.random.set_state(npy)
        torch.set_rng_state(th)
        return False
