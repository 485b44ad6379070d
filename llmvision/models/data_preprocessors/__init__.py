"""Data preprocessors (registered in ``MODELS``)."""
from .det_data_preprocessor import GDINO_MEAN, GDINO_STD, DetDataPreprocessor, make_pixel_mask

__all__ = ['GDINO_MEAN', 'GDINO_STD', 'DetDataPreprocessor', 'make_pixel_mask']
