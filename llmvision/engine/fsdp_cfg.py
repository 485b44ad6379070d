"""``tools/train.py --fsdp [FULL_SHARD|SHARD_GRAD_OP|NO_SHARD|HYBRID_SHARD]``: torch FSDP through
mmengine's ``FlexibleRunner`` + ``FSDPStrategy``.

    # 8 GPUs, parameters + gradients + optimizer state sharded, bf16 autocast
    bash dist_train.sh configs/llmdet/llmdet_swin_t.py 8 --fsdp --amp bf16
    # CPU (gloo), what tests/test_engine_fsdp.py runs
    bash dist_train.sh configs/grounding_dino/grounding_dino_tiny_synthetic.py 2 --fsdp

The whole model is one FSDP unit unless ``--fsdp-min-params N`` (or the config's own
``strategy``) asks for size-based wrapping. ``use_orig_params=True`` (mmengine's default) keeps
frozen and trainable parameters in one flat parameter, so the frozen backbone / LLM base and
the parameter-wise lr multipliers of the config work unchanged. Checkpoints are saved as one
full state dict on rank 0 (``state_dict_cfg='full'``), loadable by ``tools/test.py`` and by a
non-FSDP run. ``--amp bf16`` autocasts like our ``BF16OptimWrapper`` (fp32 sharded weights,
bf16 autocast); ``--amp fp16`` is refused: FSDP needs its sharded grad scaler, which mmengine's
``AmpOptimWrapper`` does not use.

Gradient clipping trap (found here): mmengine's ``OptimWrapper`` clips with
``torch.nn.utils.clip_grad_norm_`` over the parameters it holds, which under FSDP are each rank's
*shards*: every rank computed its own local norm and scaled its shard by a different factor, so
a clipped FSDP run silently diverged from the same run under DDP. :class:`FSDPOptimWrapper` clips
with the root FSDP module's ``clip_grad_norm_`` (the global norm, for every sharding strategy).

mmengine 0.10.7 passes ``device_id=LOCAL_RANK`` to FSDP, which means a CUDA device; on a
machine without CUDA :class:`LLMVisionFSDP` turns it into the CPU device instead.
"""
import weakref

import torch
from mmengine.model.wrappers import MMFullyShardedDataParallel
from mmengine.registry import FUNCTIONS, MODEL_WRAPPERS
from torch.distributed.fsdp.wrap import size_based_auto_wrap_policy

from llmvision.registry import OPTIM_WRAPPERS

from .optim_wrappers import BF16OptimWrapper

# mmengine resolves a string ``auto_wrap_policy`` in its FUNCTIONS registry, which has none
FUNCTIONS.register_module(name='size_based_auto_wrap_policy', module=size_based_auto_wrap_policy,
                          force=True)

SHARDING = ('FULL_SHARD', 'SHARD_GRAD_OP', 'NO_SHARD', 'HYBRID_SHARD')


@MODEL_WRAPPERS.register_module(force=True)
class LLMVisionFSDP(MMFullyShardedDataParallel):
    """mmengine's FSDP wrapper that also runs on CPU (gloo): ``device_id`` -> ``cpu`` there.

    The last one built in this process is the root that :class:`FSDPOptimWrapper` clips with
    (one training model per process).
    """

    _root = None

    def __init__(self, module, device_id=None, **kwargs):
        if not torch.cuda.is_available():
            device_id = torch.device('cpu')
        super().__init__(module, device_id=device_id, **kwargs)
        LLMVisionFSDP._root = weakref.ref(self)

    @classmethod
    def root(cls):
        return cls._root() if cls._root is not None else None


@OPTIM_WRAPPERS.register_module()
class FSDPOptimWrapper(BF16OptimWrapper):
    """Optimizer wrapper for FSDP: global-norm gradient clipping; bf16 autocast optional.

    Args:
        autocast: bf16 autocast of the forward (``--amp bf16``); default off (fp32).
        **kwargs: :class:`mmengine.optim.OptimWrapper` arguments.
    """

    def __init__(self, autocast: bool = False, **kwargs):
        super().__init__(autocast=autocast, **kwargs)

    def _clip_grad(self) -> None:
        root = LLMVisionFSDP.root()
        if root is None or self.grad_name != 'grad_norm':  # no FSDP model, or value clipping
            return super()._clip_grad()
        kwargs = self.clip_grad_kwargs
        total = root.clip_grad_norm_(kwargs['max_norm'], kwargs.get('norm_type', 2.0))
        self.message_hub.update_scalar('train/grad_norm', float(total))


def fsdp_strategy(cfg, sharding: str = 'FULL_SHARD', amp: str = None, min_num_params: int = None):
    """Return ``(strategy, optim_wrapper)`` config dicts for ``FlexibleRunner``.

    Args:
        cfg: the training config (its ``optim_wrapper`` optimizer, clipping, paramwise_cfg and
            accumulation are kept; the type becomes :class:`FSDPOptimWrapper`). Call this
            after ``--amp`` has been folded in.
        sharding: a ``torch.distributed.fsdp.ShardingStrategy`` name.
        amp: the ``--amp`` value (``None``/``'bf16'``; ``'fp16'`` raises).
        min_num_params: wrap every sub-module with at least this many parameters as its own
            FSDP unit (``None``: the whole model is one unit).
    """
    sharding = sharding.upper()
    if sharding not in SHARDING:
        raise ValueError(f'--fsdp: unknown sharding strategy {sharding!r}; one of {SHARDING}')
    if amp == 'fp16':
        raise ValueError('--fsdp with --amp fp16 is not supported (FSDP needs its sharded grad '
                         'scaler); use --amp bf16')
    wrapper = dict(type='LLMVisionFSDP', sharding_strategy=sharding, use_orig_params=True)
    if min_num_params:
        wrapper['auto_wrap_policy'] = dict(type='size_based_auto_wrap_policy',
                                           min_num_params=int(min_num_params))
    strategy = dict(type='FSDPStrategy', model_wrapper=wrapper, state_dict_cfg='full')
    optim_wrapper = dict(cfg.optim_wrapper)
    kind = optim_wrapper.get('type', 'OptimWrapper')
    kind = kind if isinstance(kind, str) else getattr(kind, '__name__', str(kind))
    autocast = amp == 'bf16'
    if kind == 'AmpOptimWrapper':  # a config's own mixed precision
        if str(optim_wrapper.get('dtype')) not in ('bfloat16', 'torch.bfloat16'):
            raise ValueError('--fsdp with an fp16 AmpOptimWrapper is not supported (FSDP needs its '
                             'sharded grad scaler); use bf16')
        autocast = True
        optim_wrapper.pop('dtype')
        optim_wrapper.pop('loss_scale', None)
    elif kind == 'BF16OptimWrapper':
        autocast = optim_wrapper.pop('autocast', True)
    elif kind != 'OptimWrapper':
        raise ValueError(f'--fsdp: optim_wrapper type {kind!r} is not supported (OptimWrapper, '
                         'BF16OptimWrapper or a bf16 AmpOptimWrapper)')
    optim_wrapper.update(type='FSDPOptimWrapper', autocast=autocast)
    return strategy, optim_wrapper
