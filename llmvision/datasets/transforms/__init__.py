"""Data transforms (registered in ``TRANSFORMS``): loading, resize, flip, box filtering, prompt sampling, packing."""
from .filter_boxes import FilterEmptyBoxes
from .flip import RandomFlip, swap_left_right
from .formatting import PackDetInputs
from .loading import LoadAnnotations, LoadImageFromFile
from .neg_pos_sampling import RandomSamplingNegPos
from .resize import FixScaleResize, RandomChoiceResize, ResizeShortSide, keep_ratio_size

__all__ = ['FilterEmptyBoxes', 'RandomFlip', 'swap_left_right', 'PackDetInputs', 'LoadAnnotations',
           'LoadImageFromFile', 'RandomSamplingNegPos', 'FixScaleResize', 'RandomChoiceResize',
           'ResizeShortSide', 'keep_ratio_size']
