"""Vision-to-LLM projectors of LLaVA (``linear``, ``mlp2x_gelu``, ``mlpNx_gelu``)."""
import re

import torch
import torch.nn as nn

from llmvision.registry import MODELS


@MODELS.register_module()
class LLaVAProjector(nn.Module):
    """``kind='mlp2x_gelu'``: ``linear_1 (in -> out) - GELU - linear_2 (out -> out)``; ``'linear'``: ``linear_1``.

    Submodule names follow transformers' ``LlavaMultiModalProjector`` (``linear_1``, ``linear_2``); the
    original LLaVA's ``mm_projector.{0,2}`` map onto them. ``mlpNx_gelu`` stacks N linears with GELU between.

    Args:
        in_dims: vision feature size (CLIP-L: 1024).
        out_dims: LLM hidden size.
        kind: ``'linear'`` | ``'mlp2x_gelu'`` | ``'mlp<N>x_gelu'``.
        bias: linear biases (transformers' ``multimodal_projector_bias``).
    """

    def __init__(self, in_dims: int, out_dims: int, kind: str = 'mlp2x_gelu', bias: bool = True):
        super().__init__()
        match = re.fullmatch(r'mlp(\d+)x_gelu', kind)
        if kind == 'linear':
            depth = 1
        elif match and int(match.group(1)) >= 1:
            depth = int(match.group(1))
        else:
            raise ValueError(f"projector kind must be 'linear' or 'mlp<N>x_gelu' (e.g. 'mlp2x_gelu'), got {kind!r}")
        self.kind = kind
        self.depth = depth
        self.act = nn.GELU()
        for i in range(depth):
            self.add_module(f'linear_{i + 1}', nn.Linear(in_dims if i == 0 else out_dims, out_dims, bias=bias))

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats [..., in_dims]`` -> ``[..., out_dims]`` (computed in the projector's parameter dtype)."""
        x = feats.to(self.linear_1.weight.dtype)
        for i in range(self.depth):
            if i:
                x = self.act(x)
            x = getattr(self, f'linear_{i + 1}')(x)
        return x
