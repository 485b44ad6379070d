"""Batch normalisation and padding for detectors (mmdet's DetDataPreprocessor, our own code).

Input: the output of mmengine's ``pseudo_collate`` on ``PackDetInputs`` results:
``{'inputs': [uint8 [3, H_i, W_i] BGR, ...], 'data_samples': [DetDataSample, ...]}``.
Output: ``{'inputs': float [B, 3, Hp, Wp], 'data_samples': list}``; images are converted to RGB
(``bgr_to_rgb``), normalised by ``mean``/``std`` and zero-padded (in normalised space) at the
bottom/right to the batch max, rounded up to ``pad_size_divisor``. Each sample's metainfo gets
``batch_input_shape = pad_shape = (Hp, Wp)``; boxes need no change (padding is bottom/right).
"""
from typing import Optional, Sequence

import torch
from mmengine.model import ImgDataPreprocessor

from ...registry import MODELS

GDINO_MEAN = (123.675, 116.28, 103.53)
GDINO_STD = (58.395, 57.12, 57.375)


def make_pixel_mask(data_samples: Sequence, batch_input_shape: Optional[Sequence[int]] = None,
                    device=None) -> torch.Tensor:
    """Valid-pixel mask from each sample's ``img_shape``.

    Args:
        data_samples: B samples with metainfo ``img_shape`` (and ``batch_input_shape`` when
            ``batch_input_shape`` is not given).
        batch_input_shape: ``(Hp, Wp)`` of the padded batch.

    Returns:
        bool ``[B, Hp, Wp]``: True on image pixels, False on padding.
    """
    if batch_input_shape is None:
        batch_input_shape = data_samples[0].metainfo['batch_input_shape']
    hp, wp = batch_input_shape
    mask = torch.zeros(len(data_samples), hp, wp, dtype=torch.bool, device=device)
    for i, sample in enumerate(data_samples):
        h, w = sample.metainfo['img_shape'][:2]
        if h > hp or w > wp:
            raise ValueError(f'sample {i}: img_shape {(h, w)} exceeds the batch input shape {(hp, wp)}')
        mask[i, :h, :w] = True
    return mask


@MODELS.register_module()
class DetDataPreprocessor(ImgDataPreprocessor):
    """Normalise, convert BGR->RGB and pad a detection batch; record the padded shape.

    Args:
        mean, std: per-channel statistics in the order of the converted image (RGB with
            ``bgr_to_rgb``); defaults are mmdet's Grounding-DINO values.
        bgr_to_rgb: swap channels 0 and 2 before normalising.
        pad_size_divisor: round the padded size up to a multiple of this.
        pad_value: value of padded pixels (after normalisation).
    """

    def __init__(self, mean: Sequence[float] = GDINO_MEAN, std: Sequence[float] = GDINO_STD,
                 bgr_to_rgb: bool = True, pad_size_divisor: int = 1, pad_value: float = 0.0,
                 non_blocking: bool = False):
        super().__init__(mean=mean, std=std, pad_size_divisor=pad_size_divisor, pad_value=pad_value,
                         bgr_to_rgb=bgr_to_rgb, non_blocking=non_blocking)

    def forward(self, data: dict, training: bool = False) -> dict:
        """``{'inputs': list of [3, H_i, W_i], 'data_samples'}`` -> ``{'inputs': [B, 3, Hp, Wp], ...}``."""
        data = super().forward(data, training)
        inputs, samples = data['inputs'], data.get('data_samples')
        if samples is not None:
            shape = tuple(inputs.shape[-2:])
            for sample in samples:
                sample.set_metainfo(dict(batch_input_shape=shape, pad_shape=shape))
        return data

    @staticmethod
    def pixel_mask(data: dict) -> torch.Tensor:
        """bool ``[B, Hp, Wp]`` valid-pixel mask of a preprocessed batch (see :func:`make_pixel_mask`)."""
        inputs = data['inputs']
        return make_pixel_mask(data['data_samples'], tuple(inputs.shape[-2:]), device=inputs.device)
