"""Data transforms (registered in ``TRANSFORMS``): loading, resize, flip, box filtering, packing."""
from .filter_boxes import FilterEmptyBoxes
from .flip import RandomFlip, swap_left_right
from .formatting import PackDetInputs
from .loading import LoadAnnotations, LoadImageFromFile
from .resize import FixScaleResize, RandomChoiceResize, ResizeShortSide, keep_ratio_size

__all__ = ['FilterEmptyBoxes', 'RandomFlip', 'swap_left_right', 'PackDetInputs', 'LoadAnnotations',
           'LoadImageFromFile', 'FixScaleResize', 'RandomChoiceResize', 'ResizeShortSide', 'keep_ratio_size']
