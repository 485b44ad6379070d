"""Save and restore the global RNG states with each checkpoint, so a resumed run continues
the same random stream (dropout, denoising noise) as an uninterrupted one.

mmengine re-seeds on resume but does not restore the generators' positions, so the step after
a resume draws different random numbers than the uninterrupted run did. Data-pipeline
randomness is handled separately: datasets draw from their own stream (see
``llmvision.datasets`` ``PrivateRNG``), which IterBasedTrainLoop's skip of consumed batches
replays exactly.

States are stored as tensors/lists (no arbitrary pickles): they load with ``weights_only``.
"""
import random

import numpy as np
import torch
from mmengine.dist import get_rank
from mmengine.hooks import Hook

from llmvision.registry import HOOKS


def capture_rng_state() -> dict:
    """Current torch/CUDA/numpy/python RNG states as tensors and plain lists."""
    np_state = np.random.get_state()
    state = dict(
        torch=torch.get_rng_state(),
        numpy=dict(name=np_state[0], keys=torch.from_numpy(np_state[1].astype(np.int64)),
                   pos=int(np_state[2]), has_gauss=int(np_state[3]), cached=float(np_state[4])),
        python=list(random.getstate()[1]),
        python_version=random.getstate()[0],
        python_gauss=random.getstate()[2],
    )
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state['cuda'] = torch.cuda.get_rng_state_all()
    return state


def restore_rng_state(state: dict) -> None:
    """Inverse of :func:`capture_rng_state`."""
    torch.set_rng_state(state['torch'].cpu())
    npst = state['numpy']
    np.random.set_state((npst['name'], npst['keys'].numpy().astype(np.uint32), npst['pos'],
                         npst['has_gauss'], npst['cached']))
    random.setstate((state['python_version'], tuple(state['python']), state['python_gauss']))
    if 'cuda' in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state['cuda'])


def _checkpoint_hook(runner):
    from mmengine.hooks import CheckpointHook
    for hook in runner.hooks:
        if isinstance(hook, CheckpointHook):
            return hook
    return None


@HOOKS.register_module()
class RNGStateHook(Hook):
    """Store every rank's RNG states in ``checkpoint['rng_state']`` and restore them on resume.

    ``Runner.save_checkpoint`` runs on rank 0 only, so the states of all ranks are gathered one
    step earlier, in ``after_train_iter``/``after_train_epoch`` of the iterations where the
    ``CheckpointHook`` will save (this hook runs before it). A resumed run with another world
    size falls back to rank 0's state for the extra ranks.
    """

    priority = 'LOW'  # before CheckpointHook (VERY_LOW)

    def __init__(self):
        self._pending = None

    def _gather(self):
        from mmengine.dist import all_gather_object, get_world_size
        state = capture_rng_state()
        return all_gather_object(state) if get_world_size() > 1 else [state]

    def after_train_iter(self, runner, batch_idx, data_batch=None, outputs=None):
        ckpt = _checkpoint_hook(runner)
        if ckpt is None or ckpt.by_epoch:
            return
        if (self.every_n_train_iters(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and self.is_last_train_iter(runner))):
            self._pending = self._gather()

    def after_train_epoch(self, runner):
        ckpt = _checkpoint_hook(runner)
        if ckpt is None or not ckpt.by_epoch:
            return
        if (self.every_n_epochs(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and self.is_last_train_epoch(runner))):
            self._pending = self._gather()

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        states = self._pending if self._pending is not None else [capture_rng_state()]
        checkpoint['rng_state'] = {str(r): s for r, s in enumerate(states)}
        self._pending = None

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        states = checkpoint.get('rng_state')
        if states and getattr(runner, '_resume', False):
            restore_rng_state(states.get(str(get_rank()), states['0']))
