"""CdnQueryGenerator: shapes, group layout, attention mask, noise bounds, label flip rate, empty images."""
import pytest
import torch

from llmvision.models.losses import CdnQueryGenerator
from llmvision.structures.boxes import cxcywh_to_xyxy


def _gt(num, seed=0, num_classes=20):
    g = torch.Generator().manual_seed(seed)
    boxes = torch.cat([torch.rand(num, 2, generator=g) * 0.2 + 0.4,
                       torch.rand(num, 2, generator=g) * 0.1 + 0.1], 1)  # far from the borders
    return dict(bboxes=boxes, labels=torch.randint(0, num_classes, (num,), generator=g))


def _make(num_dn=12, queries=10, **kw):
    return CdnQueryGenerator(num_classes=20, embed_dims=8, num_matching_queries=queries,
                             group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=num_dn), **kw)


def test_shapes_groups_and_mask_structure():
    torch.manual_seed(0)
    gen = _make(num_dn=12, queries=10)
    gts = [_gt(3, 1), _gt(1, 2), _gt(0, 3)]
    label_q, bbox_q, mask, meta = gen(gts)
    groups, max_n = 12 // 3, 3
    num_dn = 2 * groups * max_n
    assert meta == dict(num_denoising_queries=num_dn, num_denoising_groups=groups)
    assert label_q.shape == (3, num_dn, 8) and bbox_q.shape == (3, num_dn, 4)
    assert mask.shape == (num_dn + 10, num_dn + 10) and mask.dtype == torch.bool
    group_of = torch.arange(num_dn) // (2 * max_n)
    for i in range(num_dn):
        for j in range(num_dn):
            assert mask[i, j].item() == (group_of[i] != group_of[j]).item()
    assert mask[num_dn:, :num_dn].all()          # matching queries never see dn queries
    assert not mask[num_dn:, num_dn:].any()      # matching queries see each other
    assert not mask[:num_dn, num_dn:].any()      # dn queries see matching ones (as in DINO)
    # padding slots (image 1 has one gt, image 2 none) are exact zeros
    real = torch.zeros(3, num_dn, dtype=torch.bool)
    for b, n in enumerate((3, 1, 0)):
        for blk in range(2 * groups):
            real[b, blk * max_n: blk * max_n + n] = True
    assert (label_q[~real] == 0).all() and (bbox_q[~real] == 0).all()
    assert (label_q[real].abs().sum(-1) > 0).all()


def test_noise_bounds_positive_and_negative():
    torch.manual_seed(1)
    gen = _make(num_dn=200, label_noise_scale=0.5, box_noise_scale=1.0)
    gt = _gt(4, 5)
    ref = cxcywh_to_xyxy(gt['bboxes'])
    half_wh = gt['bboxes'][:, 2:].repeat(1, 2) / 2
    tol = 1e-3
    # through forward: positive queries keep a valid box, so sigmoid(query) gives back the noised box
    _, bbox_q, _, meta = gen([gt])
    groups = meta['num_denoising_groups']
    noisy = cxcywh_to_xyxy(bbox_q[0].sigmoid()).view(2 * groups, 4, 4)
    rel_pos = (noisy[0::2] - ref).abs() / half_wh  # corner shift in units of half the box size
    assert rel_pos.max() < 1 + tol and rel_pos.mean() < 0.6
    # negatives may cross their corners (then the query clamps w/h, as in DINO): check the noised xyxy
    boxes = gt['bboxes'][None, None].expand(1, 2 * groups, 4, 4)
    rel = (cxcywh_to_xyxy(gen._noisy_boxes(boxes))[0] - ref).abs() / half_wh
    assert rel[0::2].max() < 1 + tol
    assert rel[1::2].min() > 1 - tol and rel[1::2].max() < 2 + tol and rel[1::2].mean() > 1.4
    gen_half = _make(num_dn=200, box_noise_scale=0.5)
    rel_half = (cxcywh_to_xyxy(gen_half._noisy_boxes(boxes))[0] - ref).abs() / half_wh
    assert rel_half[1::2].max() < 1 + tol and rel_half[1::2].min() > 0.5 - tol


def test_label_flip_rate():
    torch.manual_seed(2)
    num_classes = 20
    gen = CdnQueryGenerator(num_classes=num_classes, embed_dims=num_classes, num_matching_queries=5,
                            label_noise_scale=0.5, group_cfg=dict(dynamic=False, num_groups=100))
    with torch.no_grad():  # one-hot embeddings reveal the noised label of every query
        gen.label_embedding.weight.copy_(torch.eye(num_classes))
    gt = dict(bboxes=torch.tensor([[0.5, 0.5, 0.2, 0.2]] * 10), labels=torch.arange(10))
    label_q, _, _, meta = gen([gt])
    assert meta['num_denoising_groups'] == 100
    noisy = label_q[0].argmax(-1).view(200, 10)
    changed = (noisy != torch.arange(10)).float().mean().item()
    # replaced with prob 0.25, and a replacement keeps the label with prob 1/20
    expected = 0.25 * (1 - 1 / num_classes)
    assert abs(changed - expected) < 0.02


def test_all_empty_batch_and_gradient_reaches_embedding():
    gen = _make(queries=7)
    label_q, bbox_q, mask, meta = gen([_gt(0), _gt(0)])
    assert meta == dict(num_denoising_queries=0, num_denoising_groups=1)
    assert label_q.shape == (2, 0, 8) and bbox_q.shape == (2, 0, 4)
    assert mask.shape == (7, 7) and not mask.any()
    (label_q.sum() + torch.ones(1, requires_grad=True).sum()).backward()
    assert gen.label_embedding.weight.grad is not None


def test_dynamic_group_count_and_errors():
    gen = _make(num_dn=100)
    assert gen.get_num_groups(0) == 1 and gen.get_num_groups(7) == 14 and gen.get_num_groups(300) == 1
    with pytest.raises(KeyError, match=r"batch_gt\[1\].*'labels'"):
        gen([_gt(2), dict(bboxes=torch.zeros(1, 4))])
    with pytest.raises(ValueError, match=r'batch_gt\[0\].*\[0, 20\)'):
        gen([dict(bboxes=torch.rand(1, 4), labels=torch.tensor([25]))])
    with pytest.raises(ValueError, match='num_groups'):
        CdnQueryGenerator(20, 8, 10, group_cfg=dict(dynamic=False))
