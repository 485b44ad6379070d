"""Feed-forward block ``fc2(dropout(relu(fc1(x))))`` (no residual, no norm)."""
import torch
from torch import nn


class FFN(nn.Module):
    """``[..., C] -> [..., C]`` through a ``hidden`` wide ReLU layer."""

    def __init__(self, embed_dims: int, hidden: int, dropout: float = 0.0):
        super().__init__()
        self.fc1 = nn.Linear(embed_dims, hidden)
        self.fc2 = nn.Linear(hidden, embed_dims)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.drop(self.fc2(self.drop(torch.relu(self.fc1(x)))))
