"""Multi-scale deformable attention: PyTorch reference + Triton GPU kernel behind one API.

``multi_scale_deformable_attn(value, spatial_shapes, level_start_index, sampling_locations,
attention_weights, backend='auto')`` and the ``MultiScaleDeformableAttention`` module.
"""
from .msda_function import available_backends, multi_scale_deformable_attn, resolve_backend, triton_available
from .msda_module import MultiScaleDeformableAttention
from .msda_pytorch import multi_scale_deformable_attn_pytorch

__all__ = ['multi_scale_deformable_attn', 'multi_scale_deformable_attn_pytorch', 'MultiScaleDeformableAttention',
           'available_backends', 'resolve_backend', 'triton_available']
