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
