"""sigmoid_focal_loss against torchvision's reference implementation."""
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from llmvision.models.losses import sigmoid_focal_loss


@pytest.mark.parametrize('reduction', ['none', 'sum', 'mean'])
@pytest.mark.parametrize('alpha,gamma', [(0.25, 2.0), (0.5, 1.0), (-1.0, 0.0)])
def test_matches_torchvision(reduction, alpha, gamma):
    torch.manual_seed(0)
    logits = torch.randn(7, 13) * 3
    targets = (torch.rand(7, 13) > 0.7).float()
    ours = sigmoid_focal_loss(logits, targets, alpha, gamma, reduction)
    ref = tv_focal(logits, targets, alpha, gamma, reduction)
    torch.testing.assert_close(ours, ref, rtol=1e-6, atol=1e-6)


def test_gradient_matches_torchvision():
    torch.manual_seed(1)
    logits = torch.randn(50, requires_grad=True)
    targets = (torch.rand(50) > 0.5).float()
    sigmoid_focal_loss(logits, targets, reduction='sum').backward()
    g_ours = logits.grad.clone()
    logits.grad = None
    tv_focal(logits, targets, reduction='sum').backward()
    torch.testing.assert_close(g_ours, logits.grad)


def test_hand_value_and_errors():
    # p = 0.5, y = 1: ce = log 2, (1 - p_t)^2 = 1/4, alpha_t = 0.25
    val = sigmoid_focal_loss(torch.zeros(1), torch.ones(1))
    assert val.item() == pytest.approx(0.25 * 0.25 * torch.log(torch.tensor(2.0)).item(), rel=1e-6)
    with pytest.raises(ValueError, match='reduction'):
        sigmoid_focal_loss(torch.zeros(1), torch.ones(1), reduction='avg')
    with pytest.raises(ValueError, match='same shape'):
        sigmoid_focal_loss(torch.zeros(2), torch.ones(1))
