"""Optimizer wrapper for bf16 mixed precision.

mmengine's ``AmpOptimWrapper`` always owns a ``GradScaler``. With ``dtype='bfloat16'`` the scaler
is useless (bf16 has fp32's exponent range) and harmful: ``unscale_`` has no bf16 kernel, so any
model holding bf16 parameters (an LLM loaded in bf16) crashes at the first clipped step, and the
wrapper refuses to run on CPU at all. ``BF16OptimWrapper`` autocasts the forward to bf16 on the
model's device (CUDA or CPU) and steps without a scaler; gradient clipping works on bf16 and fp32
gradients alike.
"""
from contextlib import contextmanager

import torch
from mmengine.optim import OptimWrapper

from llmvision.registry import OPTIM_WRAPPERS


def _device_type(model: torch.nn.Module) -> str:
    for p in model.parameters():
        return p.device.type
    return 'cpu'


@OPTIM_WRAPPERS.register_module()
class BF16OptimWrapper(OptimWrapper):
    """``OptimWrapper`` whose ``optim_context`` runs the forward under bf16 autocast.

    Args:
        autocast (bool): autocast the forward to bf16. Set False when the model is already
            cast to bf16 and only the scaler-free step is wanted. Defaults to True.
        **kwargs: passed to :class:`mmengine.optim.OptimWrapper` (optimizer, clip_grad,
            accumulative_counts).
    """

    def __init__(self, autocast: bool = True, **kwargs):
        super().__init__(**kwargs)
        self.autocast = autocast
        self.cast_dtype = torch.bfloat16

    @contextmanager
    def optim_context(self, model: torch.nn.Module):
        with super().optim_context(model):
            if not self.autocast:
                yield
                return
            with torch.autocast(device_type=_device_type(model), dtype=torch.bfloat16):
                yield


def _type_name(kind) -> str:
    return kind if isinstance(kind, str) else getattr(kind, '__name__', repr(kind))


def check_optimizer_types(cfg, source: str) -> None:
    """Raise a one-line ``KeyError`` naming the key and value when ``optim_wrapper`` names an
    optimizer type that is neither a class nor registered (mmengine failed later with "None is
    not a callable object"). Checks ``optim_wrapper.optimizer.type`` and, for a dict of wrappers,
    ``optim_wrapper.<name>.optimizer.type``.
    """
    from llmvision.registry import OPTIMIZERS
    wrapper = cfg.get('optim_wrapper')
    if not isinstance(wrapper, dict):
        return
    named = {'optim_wrapper': wrapper} if 'optimizer' in wrapper else {
        f'optim_wrapper.{k}': v for k, v in wrapper.items() if isinstance(v, dict) and 'optimizer' in v}
    if (cfg.get('strategy') or {}).get('type') in ('DeepSpeedStrategy', 'mmengine.DeepSpeedStrategy'):
        from .deepspeed_cfg import register_deepspeed_optimizers
        register_deepspeed_optimizers()
    for key, one in named.items():
        optimizer = one['optimizer']
        kind = optimizer.get('type') if isinstance(optimizer, dict) else None
        if isinstance(optimizer, dict) and kind is None:
            raise KeyError(f'{source}: {key}.optimizer has no `type`')
        if isinstance(kind, str) and OPTIMIZERS.get(kind) is None:
            known = sorted(n for n in OPTIMIZERS.module_dict) + sorted(OPTIMIZERS.parent.module_dict)
            raise KeyError(f'{source}: {key}.optimizer.type={kind!r} is not a known optimizer '
                           f'(torch.optim or registered: {", ".join(sorted(set(known))[:30])})')
        if kind is not None and not isinstance(kind, str) and not callable(kind):
            raise KeyError(f'{source}: {key}.optimizer.type={_type_name(kind)} is not callable')
