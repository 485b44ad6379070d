from .det_vis_hook import DetVisualizationHook
from .rng_state_hook import RNGStateHook, capture_rng_state, restore_rng_state

__all__ = ['DetVisualizationHook', 'RNGStateHook', 'capture_rng_state', 'restore_rng_state']
