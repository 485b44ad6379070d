"""Stop training on a NaN/Inf loss or gradient, and never save a non-finite model.

Without a guard, a diverging run (``optimizer.lr=1e6``) logs ``loss: nan`` for every later
iteration, saves NaN checkpoints, lets ``max_keep_ckpts`` rotate the last finite checkpoint away,
and exits 0. :class:`NonFiniteGuardHook` (on by default in ``configs/_base_/runtime.py``):

- checks the total loss of every ``optim_wrapper.update_params`` call *before* the backward
  pass, and the gradients before each optimizer step (all ranks agree through one all-reduce
  of a flag, so DDP / FSDP / DeepSpeed ranks take the same decision and stop together);
- with ``action='stop'`` (default) drops that step and raises :class:`NonFiniteError` in
  ``after_train_iter`` (before the ``CheckpointHook`` runs), naming the iteration and the loss
  terms that went non-finite, and the last checkpoint on disk; ``tools/train.py`` turns it into
  a one-line error and exit status 1;
- with ``action='skip'`` drops the step (the backward runs on ``loss * 0`` so that DDP / FSDP
  collectives stay in step, and its gradients are discarded; a non-finite gradient skips the
  optimizer step), counts it, and stops once more than ``max_consecutive`` steps in a row were
  dropped;
- before every checkpoint the ``CheckpointHook`` will write, checks that all weights are
  finite (a finite loss can still be followed by an overflowing update) and stops otherwise.
  A non-finite model is thus never saved, and since rotation only happens when a new
  checkpoint is saved, the last finite checkpoint is never rotated away.

Gradient checks: ``OptimWrapper`` and its subclasses (``BF16OptimWrapper``,
``FSDPOptimWrapper``: each rank checks its gradient shards) are checked before the step.
``AmpOptimWrapper`` (fp16) is not: its grad scaler already skips steps with inf gradients and
lowers the scale. DeepSpeed keeps gradients inside its engine: its global gradient norm is
read after the step (an fp16 DeepSpeed engine skips overflowing steps itself and is not checked).
"""
import logging
import os.path as osp
from typing import Optional

import torch
from mmengine.hooks import CheckpointHook, Hook
from mmengine.logging import print_log

from llmvision.registry import HOOKS


class NonFiniteError(RuntimeError):
    """Training stopped because a loss, gradient or weight became NaN/Inf."""


def _dist_world():
    import torch.distributed as dist
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        return dist
    return None


def any_rank(flag: bool) -> bool:
    """``flag`` OR-ed over all ranks (one all-reduce; plain ``flag`` without a process group)."""
    dist = _dist_world()
    if dist is None:
        return flag
    device = 'cuda' if dist.get_backend() == 'nccl' else 'cpu'
    value = torch.tensor([1.0 if flag else 0.0], device=device)
    dist.all_reduce(value, op=dist.ReduceOp.MAX)
    return bool(value.item() > 0)


def tensors_finite(tensors) -> bool:
    """Whether every element of every tensor is finite (one fused norm per device/dtype group)."""
    tensors = [t.detach() for t in tensors if t is not None and t.numel() > 0 and t.is_floating_point()]
    if not tensors:
        return True
    norms = torch._foreach_norm(tensors)
    return bool(torch.isfinite(torch.stack([n.float().cpu() for n in norms])).all())


def _grads(optim_wrapper):
    return [p.grad for group in optim_wrapper.optimizer.param_groups for p in group['params']
            if p.grad is not None]


def _weights(model: torch.nn.Module):
    # DeepSpeed ZeRO-3 keeps each rank's partition in ``ds_tensor`` (the parameter is a placeholder)
    return [getattr(p, 'ds_tensor', p) for p in model.parameters()]


def _is_deepspeed(optim_wrapper) -> bool:
    return type(optim_wrapper).__name__ == 'DeepSpeedOptimWrapper'


def _leaf_wrappers(optim_wrapper):
    """The ``OptimWrapper`` s of an ``OptimWrapperDict`` (or the wrapper itself)."""
    if hasattr(optim_wrapper, 'optim_wrappers'):
        return list(optim_wrapper.optim_wrappers.values())
    return [optim_wrapper]


def _non_finite_terms(outputs) -> dict:
    """``{name: value}`` of the logged loss terms that are not finite (first bad element)."""
    bad = {}
    for name, value in (outputs or {}).items():
        if isinstance(value, (int, float)):
            value = torch.tensor(float(value))
        if not isinstance(value, torch.Tensor) or not value.is_floating_point():
            continue
        flat = value.detach().float().flatten()
        not_finite = flat[~torch.isfinite(flat)]
        if len(not_finite):
            bad[name] = float(not_finite[0])
    return bad


@HOOKS.register_module()
class NonFiniteGuardHook(Hook):
    """Stop (or skip) on a non-finite loss or gradient; never let a non-finite model be saved.

    Args:
        action: ``'stop'`` (default): stop at the first non-finite step. ``'skip'``: drop the
            step, count it, and stop when more than ``max_consecutive`` steps in a row were
            dropped.
        max_consecutive: with ``'skip'``, the most non-finite steps in a row that are tolerated.
        check_grads: also check the gradients before each optimizer step.
        check_weights: check the weights before each checkpoint is written.

    Attributes:
        num_skipped: steps dropped so far (``'skip'``).
    """

    priority = 'ABOVE_NORMAL'  # after_train_iter before LoggerHook / CheckpointHook

    ACTIONS = ('stop', 'skip')

    def __init__(self, action: str = 'stop', max_consecutive: int = 10, check_grads: bool = True,
                 check_weights: bool = True):
        if action not in self.ACTIONS:
            raise ValueError(f'NonFiniteGuardHook: action must be one of {self.ACTIONS}, got {action!r}')
        if max_consecutive < 0:
            raise ValueError(f'NonFiniteGuardHook: max_consecutive must be >= 0, got {max_consecutive}')
        self.action = action
        self.max_consecutive = max_consecutive
        self.check_grads = check_grads
        self.check_weights = check_weights
        self.num_skipped = 0
        self._consecutive = 0
        self._event: Optional[str] = None  # 'loss' | 'gradient' found during the current iteration
        self._applied = False  # the non-finite update reached the weights (DeepSpeed)

    # --- wrapping the optimizer wrapper -------------------------------------------------------
    def before_train(self, runner) -> None:
        for wrapper in _leaf_wrappers(runner.optim_wrapper):
            if hasattr(wrapper, 'update_params') and not getattr(wrapper, '_non_finite_guarded', False):
                self._guard(wrapper)

    def _guard(self, wrapper) -> None:
        update_params, step = wrapper.update_params, wrapper.step
        deepspeed = _is_deepspeed(wrapper)
        check_grads = self.check_grads and not hasattr(wrapper, 'loss_scaler') and not deepspeed

        def guarded_update_params(loss, *args, **kwargs):
            if any_rank(not bool(torch.isfinite(loss.detach()).all())):
                self._event = 'loss'
                if not deepspeed:
                    # a zero-weighted backward keeps DDP / FSDP gradient collectives and the
                    # accumulation count in step on every rank; its gradients are dropped
                    wrapper.backward(loss * 0)
                    if wrapper.should_update():
                        wrapper.zero_grad()
                return None
            return update_params(loss, *args, **kwargs)

        def guarded_step(*args, **kwargs):
            if check_grads and any_rank(not tensors_finite(_grads(wrapper))):
                self._event = 'gradient'
                return None
            out = step(*args, **kwargs)
            if deepspeed and self.check_grads and not wrapper.model.fp16_enabled():
                norm = wrapper.model.get_global_grad_norm()
                if norm is not None and not torch.isfinite(torch.as_tensor(float(norm))):
                    self._event = 'gradient'
                    self._applied = True  # DeepSpeed stepped already: 'skip' cannot undo it
            return out

        wrapper.update_params = guarded_update_params
        wrapper.step = guarded_step
        wrapper._non_finite_guarded = True

    # --- decisions ----------------------------------------------------------------------------
    def after_train_iter(self, runner, batch_idx: int, data_batch=None, outputs=None) -> None:
        event, self._event = self._event, None
        if event is not None:
            self._on_non_finite(runner, event, outputs)
        else:
            self._consecutive = 0
        ckpt = _checkpoint_hook(runner)
        if self.check_weights and ckpt is not None and not ckpt.by_epoch and (
                self.every_n_train_iters(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and self.is_last_train_iter(runner))):
            self._check_weights(runner)

    def after_train_epoch(self, runner) -> None:
        ckpt = _checkpoint_hook(runner)
        if self.check_weights and ckpt is not None and ckpt.by_epoch and (
                self.every_n_epochs(runner, ckpt.interval, ckpt.save_begin)
                or (ckpt.save_last and self.is_last_train_epoch(runner))):
            self._check_weights(runner)

    def _on_non_finite(self, runner, event: str, outputs) -> None:
        terms = _non_finite_terms(outputs)
        dist = _dist_world()
        if dist is not None:  # every rank is here (the flag was all-reduced): name every rank's terms
            gathered = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, terms)
            terms = {}
            for rank_terms in gathered:
                for name, value in rank_terms.items():
                    terms.setdefault(name, value)
        what = (', '.join(f'{k}={v}' for k, v in terms.items()) if terms
                else 'the loss terms are finite, the gradient is not')
        message = f'non-finite {event} at iteration {runner.iter + 1}: {what}'
        self.num_skipped += 1
        self._consecutive += 1
        applied, self._applied = self._applied, False
        if self.action == 'stop' or applied or self._consecutive > self.max_consecutive:
            if self.action == 'skip' and not applied:
                message += f' ({self._consecutive} non-finite steps in a row, max_consecutive={self.max_consecutive})'
            self._stop(runner, message)
        print_log(f'{message}; step skipped ({self._consecutive} in a row, {self.num_skipped} in all)',
                  logger='current', level=logging.WARNING)

    def _check_weights(self, runner) -> None:
        model = runner.model.module if hasattr(runner.model, 'module') else runner.model
        if any_rank(not tensors_finite(_weights(model))):
            self._stop(runner, f'non-finite weights after iteration {runner.iter + 1}; '
                               'the checkpoint of this iteration is not saved')

    def _stop(self, runner, message: str) -> None:
        last = osp.join(runner.work_dir, 'last_checkpoint')
        if osp.isfile(last):
            with open(last) as f:
                message += f'. Training stopped; the last checkpoint is {f.read().strip()}'
        else:
            message += '. Training stopped; no checkpoint was saved'
        message += ' (lower the learning rate, or set NonFiniteGuardHook action="skip")'
        print_log(message, logger='current', level=logging.ERROR)
        raise NonFiniteError(message)


def _checkpoint_hook(runner) -> Optional[CheckpointHook]:
    return next((h for h in runner.hooks if isinstance(h, CheckpointHook)), None)
