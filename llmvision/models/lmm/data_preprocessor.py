"""Image batching and normalisation for the multimodal LLMs.

Input (mmengine ``pseudo_collate`` of the conversation dataset): ``{'inputs': [uint8 [N_i, 3, S, S], ...],
'data_samples': [LMMDataSample, ...]}``; ``N_i`` images of sample ``i`` (0 for a text-only sample).
Output: ``{'inputs': float [N, 3, S, S] (N = sum N_i, possibly 0), 'data_samples': [...]}`` on the model's
device, ``(x * scale - mean) / std`` per channel. Sample ``i``'s images are rows
``sum(N_0..N_{i-1}) : sum(N_0..N_i)``, in the order of its image placeholders.
"""
from typing import Optional, Sequence

import torch
from mmengine.model import BaseDataPreprocessor

from llmvision.registry import MODELS
from llmvision.structures.lmm_sample import IMAGE_TOKEN_INDEX

CLIP_MEAN = (0.48145466, 0.4578275, 0.40821073)
CLIP_STD = (0.26862954, 0.26130258, 0.27577711)
SIGLIP_MEAN = (0.5, 0.5, 0.5)
SIGLIP_STD = (0.5, 0.5, 0.5)


@MODELS.register_module()
class LMMDataPreprocessor(BaseDataPreprocessor):
    """Stack the batch's images into ``pixel_values [N, 3, S, S]`` and normalise them (CLIP statistics default).

    Args:
        mean, std: per-channel statistics on the ``scale``-d image (RGB order); CLIP's by default, use
            ``SIGLIP_MEAN`` / ``SIGLIP_STD`` for SigLIP.
        scale: multiplier applied to the uint8 pixels first (``1/255``: statistics in [0, 1] units as in the
            transformers image processors).
        bgr_to_rgb: swap channels 0 and 2 (for pipelines that load BGR).
        check_placeholders: check that each sample has as many images as ``IMAGE_TOKEN_INDEX`` entries in
            its ``input_ids`` (a clear error naming the sample otherwise).
    """

    def __init__(self, mean: Sequence[float] = CLIP_MEAN, std: Sequence[float] = CLIP_STD,
                 scale: float = 1 / 255, bgr_to_rgb: bool = False, check_placeholders: bool = True,
                 non_blocking: bool = False):
        super().__init__(non_blocking=non_blocking)
        if len(mean) != 3 or len(std) != 3:
            raise ValueError(f'mean and std need 3 channels, got {mean} and {std}')
        self.register_buffer('mean', torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.register_buffer('std', torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1), persistent=False)
        self.scale = float(scale)
        self.bgr_to_rgb = bgr_to_rgb
        self.check_placeholders = check_placeholders

    def forward(self, data: dict, training: bool = False) -> dict:
        data = self.cast_data(data)
        images = data['inputs']
        samples = data.get('data_samples')
        if isinstance(images, torch.Tensor):
            images = [images] if images.dim() == 4 and samples is not None and len(samples) == 1 else list(images)
        if samples is not None and len(images) != len(samples):
            raise ValueError(f'LMMDataPreprocessor: {len(images)} image entries for {len(samples)} data samples')
        pixel_values = self.stack(images, samples)
        return dict(inputs=pixel_values, data_samples=samples)

    def stack(self, images: Sequence[torch.Tensor], samples: Optional[Sequence] = None) -> torch.Tensor:
        """Per-sample ``[N_i, 3, S, S]`` (uint8 or float) -> normalised float ``[sum N_i, 3, S, S]``."""
        sizes = set()
        for i, img in enumerate(images):
            if img.dim() != 4 or img.shape[1] != 3:
                raise ValueError(f'LMMDataPreprocessor: sample {_name(samples, i)}: images must be '
                                 f'[N, 3, S, S], got {tuple(img.shape)}')
            if self.check_placeholders and samples is not None and 'input_ids' in samples[i]:
                n_tok = int((samples[i].input_ids == IMAGE_TOKEN_INDEX).sum())
                if n_tok != img.shape[0]:
                    raise ValueError(f'LMMDataPreprocessor: sample {_name(samples, i)} has {img.shape[0]} image(s) '
                                     f'but {n_tok} image placeholder(s) in input_ids')
            sizes.add(tuple(img.shape[2:]))
        if len(sizes) > 1:
            raise ValueError(f'LMMDataPreprocessor: images of one batch must share one size, got {sorted(sizes)} '
                             '(resize / pad them to the vision encoder size in the pipeline)')
        if not images:
            return torch.zeros(0, 3, 1, 1, device=self.device)
        x = torch.cat([img.to(self.device) for img in images], dim=0).float()
        if self.bgr_to_rgb:
            x = x[:, [2, 1, 0]]
        return (x * self.scale - self.mean) / self.std


def _name(samples, i: int) -> str:
    if samples is None:
        return str(i)
    sid = samples[i].metainfo.get('sample_id') if hasattr(samples[i], 'metainfo') else None
    return f'{i} (sample_id={sid!r})' if sid is not None else str(i)
