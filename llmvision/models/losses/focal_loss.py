"""Sigmoid focal loss (Lin et al., 2017) on raw logits, the classification loss of DETR-style heads."""
import torch
import torch.nn.functional as F

_REDUCTIONS = ('none', 'sum', 'mean')


def sigmoid_focal_loss(logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25,
                       gamma: float = 2.0, reduction: str = 'none') -> torch.Tensor:
    """Binary focal loss per element.

    ``loss = -a_t * (1 - p_t) ** gamma * log(p_t)`` with ``p = sigmoid(logits)``,
    ``p_t = p*y + (1-p)*(1-y)`` and ``a_t = alpha*y + (1-alpha)*(1-y)`` (``alpha < 0`` disables
    the alpha weighting). Targets may be soft in ``[0, 1]``.

    Args:
        logits: ``[...]`` float logits (any shape; must be finite where the loss is used).
        targets: ``[...]`` same shape, float in ``[0, 1]`` (multi-hot positive maps for grounding).
        alpha: balance weight of positives.
        gamma: focusing exponent.
        reduction: ``'none'`` (elementwise ``[...]``), ``'sum'`` or ``'mean'`` (scalars).
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f'sigmoid_focal_loss: reduction must be one of {_REDUCTIONS}, got {reduction!r}')
    if logits.shape != targets.shape:
        raise ValueError(f'sigmoid_focal_loss: logits {tuple(logits.shape)} and targets '
                         f'{tuple(targets.shape)} must have the same shape')
    targets = targets.to(logits.dtype)
    prob = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction='none')
    p_t = prob * targets + (1 - prob) * (1 - targets)
    loss = ce * (1 - p_t).pow(gamma)
    if alpha >= 0:
        loss = loss * (alpha * targets + (1 - alpha) * (1 - targets))
    if reduction == 'sum':
        return loss.sum()
    if reduction == 'mean':
        return loss.mean()
    return loss
