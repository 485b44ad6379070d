"""REF-VLM <REF> decoders: in-group matching, box / keypoint losses (OKS as COCO), shapes, masking, gradients."""
import numpy as np
import pytest
import torch

from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder
from llmvision.models.lmm.ref_vlm.box_loss import assign_targets, box_loss_terms, gather_matched
from llmvision.models.lmm.ref_vlm.keypoint_decoder import RefKeypointDecoder
from llmvision.models.lmm.ref_vlm.keypoint_loss import keypoint_loss_terms, oks
from llmvision.models.lmm.ref_vlm.matching import group_matcher, match_within_groups
from llmvision.models.lmm.ref_vlm.ref_queries import pad_ref_queries
from llmvision.models.lmm.ref_vlm.visual_features import RefVisualFeatures

TINY_CONVNEXT = dict(model_name='convnext_atto', depths=(1, 1, 1, 1), dims=(16, 32, 64, 128))


def test_matching_permutes_inside_groups_only():
    gt = torch.tensor([[0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2], [0.3, 0.7, 0.1, 0.2]])
    # group 0 = rows 0, 1 predicted swapped; group 1 = rows 2, 3 where a swap would be cheaper but
    # row 2's pred sits on row 1's target (another group): it must not be taken from there.
    pred = torch.stack([gt[1], gt[0], gt[1] + 0.01, gt[3]])
    groups = torch.tensor([0, 0, 1, 1])
    assign = match_within_groups(pred, gt, groups, group_matcher())
    assert assign.tolist() == [1, 0, 2, 3]
    assert match_within_groups(pred, gt, torch.tensor([0, 0, -1, -1]), group_matcher()).tolist() == [1, 0, -1, -1]


def test_box_loss_zero_at_matched_targets_and_positive_otherwise():
    gt = torch.tensor([[[0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1], [0, 0, 0, 0]]])
    groups = torch.tensor([[0, 0, -1]])
    valid = groups >= 0
    pred = gt[:, [1, 0, 2]].clone().requires_grad_(True)
    assign = assign_targets(pred, gt, groups, group_matcher())
    terms = box_loss_terms(pred, gather_matched(gt, assign), valid)
    assert terms['l1'].item() == pytest.approx(0, abs=1e-6) and terms['giou'].item() == pytest.approx(0, abs=1e-6)
    shifted = (pred + torch.tensor([0.05, 0, 0, 0])).detach().requires_grad_(True)
    terms = box_loss_terms(shifted, gather_matched(gt, assign), valid)
    assert terms['l1'].item() == pytest.approx(0.05, abs=1e-5) and terms['giou'].item() > 0
    (terms['l1'] + terms['giou']).backward()
    assert shifted.grad[0, :2].abs().sum() > 0 and shifted.grad[0, 2].abs().sum() == 0  # padding: no grad


def test_oks_matches_cocoeval():
    from pycocotools.cocoeval import COCOeval
    rng = np.random.default_rng(0)
    k = 5
    gt = np.concatenate([rng.uniform(10, 90, (1, k, 2)), np.array([[[2], [1], [0], [2], [2]]])], -1)
    dt = gt[..., :2] + rng.normal(0, 3, (1, k, 2))
    area, sigmas = 2500.0, np.full(k, 0.05)
    ev = COCOeval(iouType='keypoints')
    ev.params.kpt_oks_sigmas = sigmas
    ev._gts = {(1, 1): [{'keypoints': gt.reshape(-1).tolist(), 'area': area, 'bbox': [10, 10, 80, 80]}]}
    ev._dts = {(1, 1): [{'keypoints': np.concatenate([dt, np.ones((1, k, 1))], -1).reshape(-1).tolist(),
                         'score': 1.0}]}
    ev.params.maxDets = [20]
    ref = ev.computeOks(1, 1)[0, 0]
    ours = oks(torch.tensor(dt), torch.tensor(gt), torch.tensor([area]), torch.tensor(sigmas))[0]
    assert ours.item() == pytest.approx(ref, rel=1e-6)


def test_keypoint_loss_terms():
    t = torch.tensor([[[[0.3, 0.3, 2], [0.6, 0.3, 1], [0.0, 0.0, 0]]]])
    box = torch.tensor([[[0.45, 0.3, 0.3, 0.1]]])
    valid = torch.tensor([[True]])
    logits = torch.tensor([[[9.0, -9.0, -9.0]]])
    terms = keypoint_loss_terms(t[..., :2].clone(), logits, t, box, valid, torch.full((3,), 0.05))
    assert terms['kpt_l1'].item() == pytest.approx(0) and terms['kpt_oks'].item() == pytest.approx(0, abs=1e-6)
    assert terms['kpt_vis'].item() < 1e-3
    far = t[..., :2].clone()
    far[..., 2, :] += 0.5  # the unlabelled keypoint does not count
    assert keypoint_loss_terms(far, logits, t, box, valid, torch.full((3,), 0.05))['kpt_l1'].item() == 0


def _maps(n=2, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    feats = RefVisualFeatures(convnext=TINY_CONVNEXT, use_vit=True, vit_channels=8)
    return feats, feats(torch.randn(n, 3, size, size, generator=g), torch.randn(n, 16, 8, generator=g))


def test_visual_features_sources_and_errors(tmp_path):
    feats, maps = _maps()
    assert feats.out_channels == [16, 32, 64, 8] and [m.shape[-1] for m in maps] == [8, 4, 2, 4]
    with pytest.raises(ValueError, match='square grid'):
        feats(torch.zeros(1, 3, 32, 32), torch.zeros(1, 15, 8))
    with pytest.raises(FileNotFoundError, match='never downloads'):
        RefVisualFeatures(convnext=TINY_CONVNEXT, checkpoint=str(tmp_path / 'missing.pth'))
    vit_only = RefVisualFeatures(use_convnext=False, use_vit=True, vit_channels=8)
    assert vit_only.out_channels == [8] and len(list(vit_only.parameters())) == 0


def _decoder(cls, feats, **kw):
    torch.manual_seed(0)
    return cls(llm_dim=24, in_channels=feats.out_channels, embed_dims=32, num_layers=2, num_heads=4, ffn_dim=64,
               num_queries=8, **kw)


def test_box_decoder_shapes_padding_and_gradients():
    feats, maps = _maps()
    dec = _decoder(RefBoxDecoder, feats)
    states = [torch.randn(3, 24, requires_grad=True), torch.randn(1, 24)]
    boxes = [torch.rand(3, 4) * 0.5 + 0.2, torch.rand(1, 4) * 0.5 + 0.2]
    q = pad_ref_queries(states, [[0, 0, 1], [0]], [0, 1], boxes=boxes)
    out = dec(q, maps)
    assert out['boxes'].shape == (2, 2, 3, 4) and ((out['boxes'] > 0) & (out['boxes'] < 1)).all()
    # a sample alone gives the same boxes as in the padded batch (padding is masked)
    alone = dec(pad_ref_queries(states[1:], [[0]], [1], boxes=boxes[1:]), maps)
    assert torch.allclose(alone['boxes'][:, 0, :1], out['boxes'][:, 1, :1], atol=1e-5)
    terms = dec.loss(out, q)
    assert set(terms) == {'box_l1', 'box_giou', 'box'}
    assert terms['box'].item() == pytest.approx(5 * terms['box_l1'].item() + 2 * terms['box_giou'].item(), rel=1e-5)
    terms['box'].backward()
    assert states[0].grad.abs().sum() > 0
    with pytest.raises(ValueError, match='num_queries'):
        dec(pad_ref_queries([torch.randn(9, 24)], [[0] * 9], [0]), maps)


def test_keypoint_decoder_shapes_and_losses():
    feats, maps = _maps()
    dec = _decoder(RefKeypointDecoder, feats, num_keypoints=5)
    kps = torch.rand(2, 5, 3)
    kps[..., 2] = torch.tensor([[2, 2, 1, 0, 0], [2, 1, 2, 2, 2]])
    q = pad_ref_queries([torch.randn(2, 24), torch.randn(1, 24)], [[0, 0], [0]], [1, 0],
                        boxes=[torch.rand(2, 4) * 0.3 + 0.3, torch.rand(1, 4) * 0.3 + 0.3],
                        keypoints=[kps, kps[:1]])
    out = dec(q, maps)
    assert out['boxes'].shape == (2, 2, 2, 4) and out['keypoints'].shape == (2, 2, 2, 5, 2)
    assert out['visibility'].shape == (2, 2, 2, 5)
    terms = dec.loss(out, q)
    assert {'box', 'keypoint', 'kpt_l1', 'kpt_oks', 'kpt_vis'} <= set(terms)
    expect = 2 * terms['kpt_l1'] + 2 * terms['kpt_oks'] + terms['kpt_vis']
    assert terms['keypoint'].item() == pytest.approx(expect.item(), rel=1e-5)
    (terms['box'] + terms['keypoint']).backward()
    assert dec.kpt_head.layers[0].weight.grad.abs().sum() > 0


@pytest.mark.slow
def test_box_decoder_learns_to_read_the_query():
    """Two <REF> states name two fixed boxes; the decoder learns the mapping (the query carries the target)."""
    feats, maps = _maps(n=1)
    maps = [m.detach() for m in maps]
    dec = _decoder(RefBoxDecoder, feats)
    states = torch.eye(24)[:2]
    gt = torch.tensor([[0.25, 0.3, 0.2, 0.2], [0.7, 0.6, 0.3, 0.4]])
    q = pad_ref_queries([states[:1], states[1:]], [[0], [0]], [0, 0], boxes=[gt[:1], gt[1:]])
    opt = torch.optim.AdamW(dec.parameters(), lr=5e-3)
    first = None
    for _ in range(80):
        loss = dec.loss(dec(q, maps), q)['box']
        first = loss.item() if first is None else first
        opt.zero_grad()
        loss.backward()
        opt.step()
    pred = dec.predictions(dec(q, maps))['boxes'][:, 0]
    assert (pred - gt).abs().max() < 0.05, (first, loss.item(), pred)
