"""Visual features for the ``<REF>`` decoders: multi-scale ConvNeXt maps (timm) and/or the ViT tokens.

REF-VLM feeds its decoders CLIP-ConvNeXt stages 0-2 next to the LLaVA ViT; here the ConvNeXt is any timm
ConvNeXt (a tiny one built from config in tests, or a real one from a local checkpoint) and the sources
are chosen in the config (``use_convnext``, ``use_vit``).
"""
import math
import os
from typing import List, Optional, Sequence

import torch
from torch import nn

from llmvision.registry import MODELS


@MODELS.register_module()
class RefVisualFeatures(nn.Module):
    """``pixel_values [N, 3, S, S]`` (+ ViT tokens ``[N, V, C]``) -> list of maps ``[N, C_l, H_l, W_l]``.

    Args:
        use_convnext: take ConvNeXt stages ``out_indices`` of ``pixel_values``.
        use_vit: take the ViT patch tokens (``V`` a square number), reshaped to a ``[N, C, g, g]`` map.
        convnext: kwargs of ``timm.create_model`` (``model_name`` plus e.g. ``depths``, ``dims``);
            ``pretrained`` is always False: weights come from ``checkpoint`` (a local file).
        out_indices: ConvNeXt stages to return (REF-VLM: 0, 1, 2).
        vit_channels: channel width of the ViT tokens (needed when ``use_vit``).
        checkpoint: optional local ConvNeXt state-dict file (timm key layout).
        frozen: freeze the ConvNeXt (the original keeps its CLIP-ConvNeXt frozen).
    """

    def __init__(self, use_convnext: bool = True, use_vit: bool = False, convnext: Optional[dict] = None,
                 out_indices: Sequence[int] = (0, 1, 2), vit_channels: int = 0,
                 checkpoint: Optional[str] = None, frozen: bool = False):
        super().__init__()
        if not (use_convnext or use_vit):
            raise ValueError('RefVisualFeatures: choose at least one of use_convnext / use_vit')
        if use_vit and vit_channels <= 0:
            raise ValueError('RefVisualFeatures: use_vit needs vit_channels (the width of the ViT tokens)')
        self.use_vit, self.vit_channels = use_vit, int(vit_channels)
        self.convnext = None
        channels: List[int] = []
        if use_convnext:
            import timm
            kwargs = dict(convnext or dict(model_name='convnext_tiny'))
            kwargs.update(pretrained=False, features_only=True, out_indices=tuple(out_indices))
            self.convnext = timm.create_model(kwargs.pop('model_name'), **kwargs)
            if checkpoint is not None:
                self._load(checkpoint)
            channels += list(self.convnext.feature_info.channels())
            if frozen:
                self.convnext.requires_grad_(False)
        self.frozen = frozen
        if use_vit:
            channels.append(self.vit_channels)
        self.out_channels = channels

    def _load(self, path: str) -> None:
        if not os.path.isfile(path):
            raise FileNotFoundError(f'RefVisualFeatures: ConvNeXt checkpoint {path!r} not found: put a timm '
                                    'ConvNeXt state dict there or set checkpoint=None (llmvision never downloads)')
        state = torch.load(path, map_location='cpu', weights_only=True)
        state = state.get('state_dict', state)
        missing, unexpected = self.convnext.load_state_dict(state, strict=False)
        if len(missing) == len(self.convnext.state_dict()):
            raise KeyError(f'RefVisualFeatures: no key of {path!r} matches the ConvNeXt (first keys: '
                           f'{list(state)[:3]})')

    def train(self, mode: bool = True):
        super().train(mode)
        if self.frozen and self.convnext is not None:
            self.convnext.eval()
        return self

    def forward(self, pixel_values: torch.Tensor, vit_tokens: Optional[torch.Tensor] = None
                ) -> List[torch.Tensor]:
        """``pixel_values [N, 3, S, S]``, ``vit_tokens [N, V, C]`` -> maps ``[N, C_l, H_l, W_l]``."""
        maps: List[torch.Tensor] = []
        if self.convnext is not None:
            maps += list(self.convnext(pixel_values))
        if self.use_vit:
            if vit_tokens is None:
                raise ValueError('RefVisualFeatures: use_vit=True but no ViT tokens were given')
            n, v, c = vit_tokens.shape
            g = math.isqrt(v)
            if g * g != v:
                raise ValueError(f'RefVisualFeatures: {v} ViT tokens do not form a square grid (drop the CLS token)')
            maps.append(vit_tokens.transpose(1, 2).reshape(n, c, g, g))
        return maps
