"""Data transforms (registered in ``TRANSFORMS``).

Loading, resize, crop, flip, box filtering, prompt sampling and packing, in mmdet 3.x result keys;
square images and packing for the multimodal LLMs' conversation samples and their vision-tower pre-training.
"""
from .crop import RandomCrop
from .filter_boxes import FilterEmptyBoxes
from .flip import RandomFlip, swap_left_right
from .formatting import PackDetInputs
from .loading import LoadAnnotations, LoadImageFromFile
from .neg_pos_sampling import RandomSamplingNegPos
from .pack_lmm import PackLMMInputs
from .pack_patch_tags import PackPatchTagInputs
from .resize import FixScaleResize, RandomChoiceResize, ResizeShortSide, keep_ratio_size
from .square_images import LoadSquareImages

__all__ = ['RandomCrop', 'FilterEmptyBoxes', 'RandomFlip', 'swap_left_right', 'PackDetInputs', 'LoadAnnotations',
           'LoadImageFromFile', 'RandomSamplingNegPos', 'PackLMMInputs', 'PackPatchTagInputs', 'LoadSquareImages',
           'FixScaleResize', 'RandomChoiceResize', 'ResizeShortSide', 'keep_ratio_size']
