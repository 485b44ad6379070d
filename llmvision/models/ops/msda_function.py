"""One entry point for the multi-scale deformable attention core: checks inputs, picks a backend."""
import importlib.util

import torch

from .msda_pytorch import multi_scale_deformable_attn_pytorch

BACKENDS = ('auto', 'pytorch', 'triton')
_TRITON_STATE = {}


def triton_available():
    """Whether the Triton kernels can be imported (``triton`` installed and the module loads)."""
    if 'module' not in _TRITON_STATE:
        module = None
        if importlib.util.find_spec('triton') is not None:
            try:
                from . import msda_triton as module
            except Exception as exc:  # a broken triton install must not break the PyTorch path
                _TRITON_STATE['error'] = repr(exc)
                module = None
        _TRITON_STATE['module'] = module
    return _TRITON_STATE['module'] is not None


def _check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights):
    if value.dim() != 4:
        raise ValueError(f'value must be [B, V, nH, Dh], got shape {tuple(value.shape)}')
    batch, num_value, num_heads, _ = value.shape
    if sampling_locations.dim() != 6 or sampling_locations.shape[-1] != 2:
        raise ValueError('sampling_locations must be [B, Q, nH, L, P, 2], got shape '
                         f'{tuple(sampling_locations.shape)}')
    b, q, h, num_levels, num_points, _ = sampling_locations.shape
    if (b, h) != (batch, num_heads):
        raise ValueError(f'sampling_locations {tuple(sampling_locations.shape)} does not match value '
                         f'{tuple(value.shape)} in batch or heads')
    if tuple(attention_weights.shape) != (b, q, h, num_levels, num_points):
        raise ValueError(f'attention_weights must be {(b, q, h, num_levels, num_points)}, got '
                         f'{tuple(attention_weights.shape)}')
    if tuple(spatial_shapes.shape) != (num_levels, 2) or tuple(level_start_index.shape) != (num_levels,):
        raise ValueError(f'spatial_shapes must be [{num_levels}, 2] and level_start_index [{num_levels}], '
                         f'got {tuple(spatial_shapes.shape)} and {tuple(level_start_index.shape)}')
    if spatial_shapes.dtype.is_floating_point or level_start_index.dtype.is_floating_point:
        raise TypeError('spatial_shapes and level_start_index must be integer tensors')
    if spatial_shapes.device.type == 'cpu':  # checking CUDA tensors would force a device sync per call
        total = int((spatial_shapes[:, 0] * spatial_shapes[:, 1]).sum())
        if total != num_value:
            raise ValueError(f'sum of H*W over spatial_shapes {spatial_shapes.tolist()} is {total}, but value '
                             f'has {num_value} positions')
        sizes = spatial_shapes[:, 0] * spatial_shapes[:, 1]
        starts = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
        if not torch.equal(starts, level_start_index.to(starts.dtype)):
            raise ValueError(f'level_start_index {level_start_index.tolist()} does not match spatial_shapes '
                             f'{spatial_shapes.tolist()} (expected {starts.tolist()})')


def resolve_backend(backend, device):
    """Map ``'auto'`` to ``'triton'`` on CUDA when Triton loads, else ``'pytorch'``; validate others."""
    if backend not in BACKENDS:
        raise ValueError(f'backend must be one of {BACKENDS}, got {backend!r}')
    if backend == 'auto':
        return 'triton' if device.type == 'cuda' and triton_available() else 'pytorch'
    if backend == 'triton':
        if not triton_available():
            raise RuntimeError('backend="triton" requested but triton cannot be imported: '
                               f'{_TRITON_STATE.get("error", "package not installed")}')
        module = _TRITON_STATE['module']
        if device.type != 'cuda' and not module.interpreter_enabled():
            raise RuntimeError(f'backend="triton" needs CUDA tensors (got {device}); set TRITON_INTERPRET=1 '
                               'before importing triton to run the kernels on CPU')
    return backend


def multi_scale_deformable_attn(value, spatial_shapes, level_start_index, sampling_locations,
                                attention_weights, backend='auto'):
    """Multi-scale deformable attention core (bilinear, zero padding, ``align_corners=False``).

    Args:
        value: ``[B, V, nH, Dh]``, ``V = sum_l H_l * W_l`` (levels concatenated in order).
        spatial_shapes: ``[L, 2]`` long ``(H_l, W_l)``.
        level_start_index: ``[L]`` long, start of each level in ``V``.
        sampling_locations: ``[B, Q, nH, L, P, 2]`` normalised ``(x, y)`` in ``[0, 1]``.
        attention_weights: ``[B, Q, nH, L, P]`` (already normalised by the caller).
        backend: ``'auto'`` (Triton on CUDA when available, else PyTorch), ``'pytorch'`` or ``'triton'``.

    Returns:
        ``[B, Q, nH * Dh]`` in ``value``'s dtype.
    """
    _check_inputs(value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    backend = resolve_backend(backend, value.device)
    if backend == 'triton':
        return _TRITON_STATE['module'].multi_scale_deformable_attn_triton(
            value, spatial_shapes, level_start_index, sampling_locations, attention_weights)
    dtype = value.dtype
    return multi_scale_deformable_attn_pytorch(value, spatial_shapes, level_start_index,
                                               sampling_locations.to(dtype), attention_weights.to(dtype))


def available_backends():
    """Backends usable on this machine for CUDA tensors (``'pytorch'`` always)."""
    names = ['pytorch']
    if triton_available() and torch.cuda.is_available():
        names.append('triton')
    return names
