from .bad_sample_summary import BadSampleSummaryHook
from .compression_schedule_hook import CompressionScheduleHook
from .det_vis_hook import DetVisualizationHook
from .non_finite_guard import NonFiniteError, NonFiniteGuardHook
from .rng_state_hook import RNGStateHook, capture_rng_state, restore_rng_state

__all__ = ['BadSampleSummaryHook', 'CompressionScheduleHook', 'DetVisualizationHook', 'NonFiniteError',
           'NonFiniteGuardHook', 'RNGStateHook', 'capture_rng_state', 'restore_rng_state']
