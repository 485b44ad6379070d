"""Visual projector: detector features (256-d) + box positions -> LLM token embeddings."""
import torch
import torch.nn as nn

from llmvision.registry import MODELS

from .sine_embedding import box_sine_embedding


@MODELS.register_module()
class VisualProjector(nn.Module):
    """``proj = Linear(in, hidden) - GELU - Linear(hidden, hidden)`` plus a box position projection.

    ``token = proj(feature) + pos_proj(box_sine_embedding(box))`` where the sine embedding has
    ``4 * pos_feats`` (512) dims. This is LLMDet's "mlp2x_gelu" connector with its position projection.

    Args:
        in_dims: detector feature size (256).
        hidden_size: LLM hidden size.
        pos_feats: sine features per box coordinate (128).
    """

    def __init__(self, in_dims: int, hidden_size: int, pos_feats: int = 128):
        super().__init__()
        self.pos_feats = pos_feats
        self.proj = nn.Sequential(nn.Linear(in_dims, hidden_size), nn.GELU(),
                                  nn.Linear(hidden_size, hidden_size))
        self.pos_proj = nn.Linear(4 * pos_feats, hidden_size)

    def forward(self, feats: torch.Tensor, boxes: torch.Tensor) -> torch.Tensor:
        """``feats [..., in_dims]``, ``boxes [..., 4]`` (normalized) -> ``[..., hidden_size]``.

        Computed in the projector's parameter dtype (fp32 by default); the caller casts to the LLM dtype.
        """
        dtype = self.pos_proj.weight.dtype
        pos = box_sine_embedding(boxes, self.pos_feats).to(dtype)
        return self.proj(feats.to(dtype)) + self.pos_proj(pos)
