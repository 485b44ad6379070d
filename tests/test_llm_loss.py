"""Chunked answer-only cross-entropy equals F.cross_entropy on the full logits (values and gradients) and
never asks the head for more than ``chunk_size`` rows at once."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmvision.models.llm.loss import causal_lm_loss, chunked_cross_entropy
from llmvision.structures.lmm_sample import IGNORE_INDEX


def setup(seed=0, b=3, t=11, h=16, v=50):
    g = torch.Generator().manual_seed(seed)
    head = nn.Linear(h, v, bias=False)
    with torch.no_grad():
        head.weight.copy_(torch.randn(v, h, generator=g))
    hidden = torch.randn(b, t, h, generator=g, requires_grad=True)
    labels = torch.randint(0, v, (b, t), generator=g)
    labels[torch.rand(b, t, generator=g) < 0.5] = IGNORE_INDEX
    labels[:, 0] = IGNORE_INDEX
    return head, hidden, labels


def reference(head, hidden, labels):
    logits = head(hidden).float()
    return F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]), labels[:, 1:].reshape(-1),
                           ignore_index=IGNORE_INDEX)


@pytest.mark.parametrize('chunk', [1, 4, 1024])
def test_equals_full_logits_cross_entropy(chunk):
    head, hidden, labels = setup()
    ref = reference(head, hidden, labels)
    g_ref = torch.autograd.grad(ref, [hidden, head.weight])
    rows = []
    hook = head.register_forward_hook(lambda m, i, o: rows.append(i[0].shape[0]))
    loss = causal_lm_loss(head, hidden, labels, chunk_size=chunk)
    hook.remove()
    grads = torch.autograd.grad(loss, [hidden, head.weight])
    n = int((labels[:, 1:] != IGNORE_INDEX).sum())
    assert torch.allclose(loss, ref, atol=1e-6, rtol=1e-6)
    for a, b in zip(grads, g_ref):
        assert torch.allclose(a, b, atol=1e-6, rtol=1e-5)
    assert max(rows) <= min(chunk, n) and sum(rows) == n       # answer rows only, chunk rows at a time


def test_bf16_head_and_sum_reduction():
    head, hidden, labels = setup(seed=1)
    head = head.to(torch.bfloat16)
    h = hidden.detach().to(torch.bfloat16)
    ref = reference(head, h, labels)
    n = int((labels[:, 1:] != IGNORE_INDEX).sum())
    rows = h[:, :-1][labels[:, 1:] != IGNORE_INDEX]
    total = chunked_cross_entropy(head, rows, labels[:, 1:][labels[:, 1:] != IGNORE_INDEX], chunk_size=5,
                                  reduction='sum')
    assert total.dtype == torch.float32
    assert torch.allclose(total / n, ref, atol=1e-5)


def test_no_supervised_rows_gives_connected_zero():
    head, hidden, labels = setup()
    loss = causal_lm_loss(head, hidden, torch.full_like(labels, IGNORE_INDEX))
    assert loss.item() == 0.0
    loss.backward()
    assert hidden.grad is not None
