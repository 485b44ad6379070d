"""Per-sample LoRA side path on a transformers causal LM, fed through a context (not forward kwargs).

``attach_side_path(llm, layer_ids, weight_types)`` registers forward hooks on the target modules of the mapped
decoder layers: ``q/k/v/o`` projections (``y = W x + (x A_i) B^T``) and the whole MLP (``mlp(x) + (x A_i) B^T``).
The frozen weights are never modified. The hooks read the factors of the running call from
:func:`perceptual_weights_context` (a ``contextvars.ContextVar``); outside a context they change nothing, so
the plain LLM is untouched. Because nothing travels as a forward kwarg, the LLM's own forward, KV cache,
DeepSpeed ZeRO-3 parameter hooks and FSDP wrapping are not involved.

Activation checkpointing re-runs a layer in the backward pass, after the context has been left. The side path
therefore wraps each checkpointed layer's ``_gradient_checkpointing_func`` (transformers'
``GradientCheckpointingLayer``): the active factors are passed to the checkpoint function as extra tensor inputs
and re-entered around the layer, both in the forward and in the recompute, so the reentrant and non-reentrant
checkpoint variants give the same loss and gradients as no checkpointing.

Works for any transformers causal LM whose decoder layers have ``self_attn.{q,k,v,o}_proj`` and ``mlp``
(LLaMA, Qwen2, Mistral, ...); other names are set with ``targets``.
"""
import contextvars
from contextlib import contextmanager
from typing import Dict, List, Sequence

import torch
import torch.nn as nn

from .weight_generator import PerceptualWeights

DEFAULT_TARGETS = dict(q='self_attn.q_proj', k='self_attn.k_proj', v='self_attn.v_proj', o='self_attn.o_proj',
                       m='mlp')

_ACTIVE: contextvars.ContextVar = contextvars.ContextVar('llmvision_perceptual_weights', default=None)


@contextmanager
def perceptual_weights_context(weights: PerceptualWeights):
    """Apply ``weights`` (or nothing for ``None``) to every LLM with an attached side path inside the block."""
    token = _ACTIVE.set(weights)
    try:
        yield weights
    finally:
        _ACTIVE.reset(token)


def active_perceptual_weights():
    """The :class:`PerceptualWeights` of the enclosing context, or ``None``."""
    return _ACTIVE.get()


def decoder_layers(llm: nn.Module) -> nn.ModuleList:
    """The decoder layers of a transformers causal LM (``llm.get_decoder().layers`` / ``llm.model.layers``)."""
    decoder = llm.get_decoder() if hasattr(llm, 'get_decoder') else getattr(llm, 'model', llm)
    layers = getattr(decoder, 'layers', None)
    if not isinstance(layers, nn.ModuleList):
        raise TypeError(f'cannot find the decoder layers of {type(llm).__name__}: expected '
                        '`get_decoder().layers` or `model.layers` (a ModuleList)')
    return layers


def side_path_delta(x: torch.Tensor, A: torch.Tensor, B: torch.Tensor) -> torch.Tensor:
    """``(x @ A) @ B^T`` per sample: ``x [b, T, in]``, ``A [B, in, r]``, ``B [out, r]`` -> ``[b, T, out]``.

    ``b`` may be a multiple of ``B`` (beam search expands each sample ``b // B`` times, sample-major).
    """
    if x.shape[0] != A.shape[0]:
        if x.shape[0] % A.shape[0]:
            raise ValueError(f'batch of {x.shape[0]} rows does not match the {A.shape[0]} samples of the '
                             'perceptual weights')
        A = A.repeat_interleave(x.shape[0] // A.shape[0], dim=0)
    return torch.bmm(x, A.to(x.dtype)) @ B.to(x.dtype).t()


class _SidePathHook:
    """Forward hook of one target module: adds slot ``slot``'s delta of weight type ``wtype``."""

    def __init__(self, wtype: str, slot: int):
        self.wtype, self.slot = wtype, slot

    def __call__(self, module, args, kwargs, output):
        weights = _ACTIVE.get()
        if weights is None or self.wtype not in weights.A:
            return None
        x = args[0] if args else next(iter(kwargs.values()))
        return output + side_path_delta(x, weights.A[self.wtype][:, self.slot], weights.B[self.wtype][self.slot])


class _ContextCheckpoint:
    """Wraps a layer's checkpoint function so the active factors are inputs of the checkpoint and are
    re-entered when the layer runs (forward and backward recompute)."""

    def __init__(self, checkpoint_fn):
        self.checkpoint_fn = checkpoint_fn

    def __call__(self, function, *args, **kwargs):
        weights = _ACTIVE.get()
        if weights is None:
            return self.checkpoint_fn(function, *args, **kwargs)
        n_args = len(args)

        def run(*inputs, **kw):
            with perceptual_weights_context(weights.with_tensors(inputs[n_args:])):
                return function(*inputs[:n_args], **kw)

        return self.checkpoint_fn(run, *args, *weights.tensors(), **kwargs)


class SidePathHandle:
    """Result of :func:`attach_side_path`: the hooked modules and ``remove()``."""

    def __init__(self, llm: nn.Module, handles: List, targets: Dict[str, List[nn.Module]]):
        self.llm, self.handles, self.targets = llm, handles, targets

    def wrap_checkpointing(self):
        """Route the factors through the checkpoint function of every checkpointing module of the LLM
        (idempotent; call after ``gradient_checkpointing_enable`` and before each context)."""
        for module in self.llm.modules():
            fn = getattr(module, '_gradient_checkpointing_func', None)
            if fn is not None and not isinstance(fn, _ContextCheckpoint):
                module._gradient_checkpointing_func = _ContextCheckpoint(fn)

    def remove(self):
        for h in self.handles:
            h.remove()
        self.handles = []


def attach_side_path(llm: nn.Module, layer_ids: Sequence[int], weight_types: str,
                     targets: Dict[str, str] = None) -> SidePathHandle:
    """Hook the side path into layers ``layer_ids`` of ``llm`` for ``weight_types`` (subset of ``'qkvom'``).

    Slot ``j`` of the :class:`PerceptualWeights` drives layer ``layer_ids[j]``; ``targets`` maps a weight type to
    the module path inside a decoder layer (:data:`DEFAULT_TARGETS`).
    """
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    layers = decoder_layers(llm)
    handles, hooked = [], {t: [] for t in weight_types}
    for slot, layer_id in enumerate(layer_ids):
        if not 0 <= layer_id < len(layers):
            raise IndexError(f'layer {layer_id} does not exist: the LLM has {len(layers)} decoder layers')
        for wtype in weight_types:
            module = layers[layer_id].get_submodule(targets[wtype])
            handles.append(module.register_forward_hook(_SidePathHook(wtype, slot), with_kwargs=True))
            hooked[wtype].append(module)
    handle = SidePathHandle(llm, handles, hooked)
    handle.wrap_checkpointing()
    return handle


def target_sizes(llm: nn.Module, layer_id: int, weight_types: str, targets: Dict[str, str] = None):
    """``(in_features, out_features)`` per weight type, read from the LLM's modules (GQA-aware: k/v output
    sizes are the k/v projections' ``out_features``; ``m`` is hidden -> hidden)."""
    targets = {**DEFAULT_TARGETS, **(targets or {})}
    layer = decoder_layers(llm)[layer_id]
    ins, outs = {}, {}
    for wtype in weight_types:
        if wtype == 'm':
            proj = layer.get_submodule(targets['q'])
            hidden = proj.in_features
            ins[wtype], outs[wtype] = hidden, hidden
        else:
            module = layer.get_submodule(targets[wtype])
            ins[wtype], outs[wtype] = module.in_features, module.out_features
    return ins, outs
