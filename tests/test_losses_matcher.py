"""HungarianMatcher: brute-force optimality, hand-computed costs, parity with transformers' matcher."""
import itertools

import pytest
import torch

from llmvision.models.losses import HungarianMatcher


def _random_case(num_queries, num_gts, num_tokens, seed):
    g = torch.Generator().manual_seed(seed)
    logits = torch.randn(num_queries, num_tokens, generator=g) * 2
    pred = torch.cat([torch.rand(num_queries, 2, generator=g) * 0.6 + 0.2,
                      torch.rand(num_queries, 2, generator=g) * 0.3 + 0.05], 1)
    gt = torch.cat([torch.rand(num_gts, 2, generator=g) * 0.6 + 0.2,
                    torch.rand(num_gts, 2, generator=g) * 0.3 + 0.05], 1)
    maps = torch.zeros(num_gts, num_tokens)
    for i in range(num_gts):
        start = int(torch.randint(1, num_tokens - 2, (1,), generator=g))
        maps[i, start:start + 1 + i % 2] = 1
    return logits, pred, gt, maps


def _brute_force(cost):
    """Minimal total cost over all injective gt -> query maps (num_gts <= num_queries)."""
    num_queries, num_gts = cost.shape
    best = None
    for perm in itertools.permutations(range(num_queries), num_gts):
        total = sum(cost[q, j].item() for j, q in enumerate(perm))
        if best is None or total < best[0]:
            best = (total, perm)
    return best


@pytest.mark.parametrize('mode', ['sum', 'mean'])
@pytest.mark.parametrize('seed', range(6))
def test_optimal_vs_brute_force(mode, seed):
    num_queries, num_gts = 6, 1 + seed % 4
    logits, pred, gt, maps = _random_case(num_queries, num_gts, 12, seed)
    matcher = HungarianMatcher(cls_cost_mode=mode)
    q_idx, g_idx = matcher(logits, pred, gt, maps)
    assert q_idx.dtype == torch.long and len(q_idx) == num_gts
    assert torch.all(q_idx[1:] > q_idx[:-1])
    cost = matcher.cost_matrix(logits, pred, gt, maps)
    total = cost[q_idx, g_idx].sum().item()
    best_total, best_perm = _brute_force(cost)
    assert total == pytest.approx(best_total, rel=1e-5, abs=1e-5)
    assert {int(g): int(q) for q, g in zip(q_idx, g_idx)} == dict(enumerate(best_perm))


def test_more_gts_than_queries_assigns_every_query():
    logits, pred, gt, maps = _random_case(3, 5, 12, 7)
    q_idx, g_idx = HungarianMatcher()(logits, pred, gt, maps)
    assert sorted(q_idx.tolist()) == [0, 1, 2] and len(set(g_idx.tolist())) == 3


def test_box_costs_hand_values():
    matcher = HungarianMatcher(cls_weight=0.0, l1_weight=5.0, giou_weight=2.0)
    pred = torch.tensor([[0.5, 0.5, 0.2, 0.2]])
    gt = torch.tensor([[0.6, 0.5, 0.2, 0.2],   # L1 0.1, IoU 1/3, enclosure = union -> GIoU 1/3
                       [0.8, 0.5, 0.2, 0.2]])  # L1 0.3, disjoint: GIoU = -(0.10 - 0.08) / 0.10 = -0.2
    cost = matcher.cost_matrix(torch.zeros(1, 4), pred, gt, torch.ones(2, 4))
    expected = torch.tensor([[5 * 0.1 - 2 / 3, 5 * 0.3 + 2 * 0.2]])
    torch.testing.assert_close(cost, expected, rtol=1e-5, atol=1e-6)


def test_class_cost_formula_and_text_mask():
    alpha, gamma, eps = 0.25, 2.0, 1e-12
    torch.manual_seed(0)
    logits = torch.randn(4, 6)
    maps = torch.tensor([[0, 1, 1, 0, 0, 0], [0, 0, 0, 1, 0, 0]], dtype=torch.float)
    mask = torch.tensor([True, True, True, True, False, False])
    p = logits.sigmoid()
    pos = -alpha * (1 - p) ** gamma * torch.log(p + eps)
    neg = -(1 - alpha) * p ** gamma * torch.log(1 - p + eps)
    expected_sum = torch.stack([(pos[:, :4] * m[:4] + neg[:, :4] * (1 - m[:4])).sum(1) for m in maps], 1)
    expected_mean = torch.stack([((pos - neg) * m).sum(1) / m.sum() for m in maps], 1)
    got_sum = HungarianMatcher(cls_cost_mode='sum').class_cost(logits, maps, mask)
    got_mean = HungarianMatcher(cls_cost_mode='mean').class_cost(logits, maps, mask)
    torch.testing.assert_close(got_sum, expected_sum)
    torch.testing.assert_close(got_mean, expected_mean)
    # padded tokens (-inf logits) change nothing once masked
    padded = logits.clone()
    padded[:, 4:] = float('-inf')
    torch.testing.assert_close(HungarianMatcher().class_cost(padded, maps, mask), expected_sum)


def test_empty_and_nonfinite_inputs():
    matcher = HungarianMatcher()
    logits, pred, gt, maps = _random_case(5, 2, 8, 3)
    q_idx, g_idx = matcher(logits, pred, gt[:0], maps[:0])
    assert q_idx.numel() == 0 and g_idx.numel() == 0 and q_idx.dtype == torch.long
    logits[0] = float('nan')
    q_idx, _ = matcher(logits, pred, gt, maps)
    assert 0 not in q_idx.tolist()
    with pytest.raises(ValueError, match='cls_cost_mode'):
        HungarianMatcher(cls_cost_mode='max')


def test_parity_with_transformers_matcher():
    from transformers.loss.loss_grounding_dino import GroundingDinoHungarianMatcher
    ref = GroundingDinoHungarianMatcher(class_cost=2.0, bbox_cost=5.0, giou_cost=2.0)
    ours = HungarianMatcher(2.0, 5.0, 2.0, cls_cost_mode='mean', eps=1e-8)
    for seed in range(5):
        cases = [_random_case(30, n, 16, seed * 10 + n) for n in (4, 7)]
        outputs = dict(logits=torch.stack([c[0] for c in cases]),
                       pred_boxes=torch.stack([c[1] for c in cases]),
                       label_maps=tuple(c[3] for c in cases))
        targets = [dict(boxes=c[2], class_labels=torch.arange(len(c[2]))) for c in cases]
        for (q_ref, g_ref), case in zip(ref(outputs, targets), cases):
            q, g = ours(*case)
            assert q.tolist() == q_ref.tolist() and g.tolist() == g_ref.tolist()
