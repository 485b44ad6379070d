"""GroundingDINOLoss: parity with transformers' criterion, DN layout, zero-gt images, gradients, learning."""
import pytest
import torch
from torchvision.ops import sigmoid_focal_loss as tv_focal

from llmvision.models.losses import CdnQueryGenerator, GroundingDINOLoss, HungarianMatcher

T = 12


def _gts(counts, seed=0):
    g = torch.Generator().manual_seed(seed)
    out = []
    for n in counts:
        boxes = torch.cat([torch.rand(n, 2, generator=g) * 0.5 + 0.25,
                           torch.rand(n, 2, generator=g) * 0.2 + 0.1], 1)
        maps = torch.zeros(n, T)
        labels = torch.randint(0, 3, (n,), generator=g)
        for i, lab in enumerate(labels.tolist()):
            maps[i, 1 + 2 * lab: 3 + 2 * lab] = 1  # label k -> tokens 2k+1, 2k+2
        out.append(dict(bboxes=boxes, labels=labels, positive_maps=maps))
    return out


def _text_mask(batch):
    mask = torch.zeros(batch, T, dtype=torch.bool)
    mask[:, :8] = True
    return mask


def _preds(layers, batch, num, seed=0, grad=True):
    g = torch.Generator().manual_seed(seed)
    cls = torch.randn(layers, batch, num, T, generator=g)
    cls[..., 8:] = float('-inf')  # padded text positions, as the contrastive head gives them
    box = torch.cat([torch.rand(layers, batch, num, 2, generator=g) * 0.8 + 0.1,
                     torch.rand(layers, batch, num, 2, generator=g) * 0.3 + 0.05], -1)
    return cls.requires_grad_(grad), box.requires_grad_(grad)


def test_parity_with_transformers_criterion():
    from transformers.loss.loss_grounding_dino import GroundingDinoHungarianMatcher, GroundingDinoImageLoss
    # equal gt counts: transformers offsets image i's labels by len(label_maps[i]) (right only then)
    gts = _gts((4, 4), seed=1)
    cls, box = _preds(1, 2, 20, seed=2, grad=False)
    mask = _text_mask(2)
    ours = GroundingDINOLoss(num_classes=T, matcher=dict(cls_cost_mode='mean', eps=1e-8),
                             loss_cls_weight=1.0, loss_bbox_weight=1.0, loss_iou_weight=1.0)
    losses, assign = ours(cls, box, None, None, mask, gts, None)
    # transformers indexes label maps per image: build one label map per gt
    criterion = GroundingDinoImageLoss(GroundingDinoHungarianMatcher(2.0, 5.0, 2.0), 0.25,
                                       ['labels', 'boxes'])
    outputs = dict(logits=cls[0], pred_boxes=box[0], text_mask=mask[:, None, :],
                   label_maps=tuple(gt['positive_maps'] for gt in gts))
    targets = [dict(boxes=gt['bboxes'], class_labels=torch.arange(len(gt['bboxes']))) for gt in gts]
    ref = criterion(outputs, targets)
    torch.testing.assert_close(losses['loss_cls'], ref['loss_ce'], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_bbox'], ref['loss_bbox'], rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses['loss_iou'], ref['loss_giou'], rtol=1e-5, atol=1e-6)
    ref_assign = criterion.matcher(outputs, targets)
    for (q, g), (q_ref, g_ref) in zip(assign, ref_assign):
        assert q.tolist() == q_ref.tolist() and g.tolist() == g_ref.tolist()


def test_keys_finite_gradients_and_last_layer_assign():
    torch.manual_seed(0)
    gts = _gts((2, 0, 4), seed=3)
    num_queries, layers = 9, 3
    dn = CdnQueryGenerator(num_classes=T, embed_dims=8, num_matching_queries=num_queries,
                           group_cfg=dict(dynamic=True, num_dn_queries=8))
    _, _, _, meta = dn(gts)
    num_dn = meta['num_denoising_queries']
    assert meta['num_denoising_groups'] == 2 and num_dn == 16
    cls, box = _preds(layers, 3, num_dn + num_queries, seed=4)
    enc_cls, enc_box = (t[0].detach().requires_grad_() for t in _preds(1, 3, num_queries, seed=5))
    loss = GroundingDINOLoss(num_classes=T)
    losses, assign = loss(cls, box, enc_cls, enc_box, _text_mask(3), gts, meta)
    expected = set()
    for part in ('loss', 'dn_loss'):
        for kind in ('cls', 'bbox', 'iou'):
            expected |= {f'{part}_{kind}'} | {f'd{i}.{part}_{kind}' for i in range(layers - 1)}
    expected |= {f'enc_loss_{k}' for k in ('cls', 'bbox', 'iou')}
    assert set(losses) == expected
    assert all(v.dim() == 0 and torch.isfinite(v) and v > 0 for v in losses.values())
    sum(losses.values()).backward()
    for t in (cls, box, enc_cls, enc_box):
        assert t.grad is not None and torch.isfinite(t.grad).all() and t.grad.abs().sum() > 0
    assert cls.grad[..., 8:].abs().sum() == 0  # padded tokens never enter the loss
    # last-layer assignment indexes the matching queries only, and is the matcher's answer
    matcher = HungarianMatcher()
    for b, (q, g) in enumerate(assign):
        assert q.numel() == len(gts[b]['bboxes']) and (q < num_queries).all()
        q_ref, g_ref = matcher(cls[-1, b, num_dn:].detach(), box[-1, b, num_dn:].detach(),
                               gts[b]['bboxes'], gts[b]['positive_maps'], _text_mask(3)[b])
        assert q.tolist() == q_ref.tolist() and g.tolist() == g_ref.tolist()


def test_dn_assignment_matches_generator_layout():
    torch.manual_seed(0)
    gts = _gts((3, 1), seed=6)
    dn = CdnQueryGenerator(num_classes=T, embed_dims=8, num_matching_queries=5, box_noise_scale=1e-4,
                           group_cfg=dict(dynamic=True, num_dn_queries=9))
    _, bbox_q, _, meta = dn(gts)
    assign = GroundingDINOLoss.dn_assign(gts, meta, 'cpu')
    for b, (q, g) in enumerate(assign):
        assert q.numel() == meta['num_denoising_groups'] * len(gts[b]['bboxes'])
        torch.testing.assert_close(bbox_q[b, q].sigmoid(), gts[b]['bboxes'][g], atol=1e-3, rtol=0)


def test_dn_class_targets_and_normalizer_by_hand():
    gts = _gts((2, 1), seed=7)
    meta = dict(num_denoising_queries=8, num_denoising_groups=2)  # max 2 gts -> 4 slots per group
    cls, box = _preds(1, 2, 8 + 4, seed=8, grad=False)
    mask = _text_mask(2)
    losses, _ = GroundingDINOLoss(num_classes=T, loss_cls_weight=1.0)(cls, box, None, None, mask,
                                                                      gts, meta)
    targets = torch.zeros(2, 8, T)
    pos_pairs = []
    for b, gt in enumerate(gts):
        for grp in range(2):
            for t in range(len(gt['bboxes'])):
                targets[b, grp * 4 + t] = gt['positive_maps'][t]
                pos_pairs.append((b, grp * 4 + t, t))
    num_pos = len(pos_pairs)  # 6
    m = mask[:, None, :].expand(2, 8, T)
    ref_cls = tv_focal(cls[0, :, :8][m], targets[m], reduction='sum') / num_pos
    ref_l1 = sum((box[0, b, q] - gts[b]['bboxes'][t]).abs().sum() for b, q, t in pos_pairs) / num_pos
    torch.testing.assert_close(losses['dn_loss_cls'], ref_cls)
    torch.testing.assert_close(losses['dn_loss_bbox'], 5.0 * ref_l1)


def test_zero_gt_images_batch_of_one_and_all_empty():
    loss = GroundingDINOLoss(num_classes=T)
    dn = CdnQueryGenerator(num_classes=T, embed_dims=8, num_matching_queries=6)
    for counts in ((0,), (0, 0)):
        gts = _gts(counts)
        _, _, _, meta = dn(gts)
        assert meta['num_denoising_queries'] == 0
        cls, box = _preds(2, len(counts), 6, seed=9)
        enc_cls, enc_box = _preds(1, len(counts), 6, seed=10)
        losses, assign = loss(cls, box, enc_cls[0], enc_box[0], _text_mask(len(counts)), gts, meta)
        for k, v in losses.items():
            assert torch.isfinite(v), k
            if 'bbox' in k or 'iou' in k or k.startswith(('dn_', 'd0.dn_')):
                assert v.item() == 0.0, k
            assert v.requires_grad, k
        m = _text_mask(len(counts))[None, :, None, :].expand(2, len(counts), 6, T)
        ref = tv_focal(cls.detach()[-1][m[-1]], torch.zeros(int(m[-1].sum())), reduction='sum')
        torch.testing.assert_close(losses['loss_cls'], ref)  # normalizer clamps to 1
        assert all(q.numel() == 0 for q, _ in assign)
        sum(losses.values()).backward()
        assert box.grad is not None and box.grad.abs().sum() == 0


def test_perfect_predictions():
    gts = _gts((3, 2), seed=11)
    num_queries = 10
    cls, box = _preds(2, 2, num_queries, seed=12, grad=False)
    random_losses, _ = GroundingDINOLoss(num_classes=T)(cls, box, None, None, _text_mask(2), gts)
    perfect_cls = torch.full_like(cls, -12.0)
    perfect_cls[..., 8:] = float('-inf')
    perfect_box = box.clone()
    for b, gt in enumerate(gts):
        n = len(gt['bboxes'])
        slots = torch.arange(n) * 3 + 1  # gts sit on queries 1, 4, 7
        perfect_box[:, b, slots] = gt['bboxes']
        perfect_cls[:, b, slots] = torch.where(gt['positive_maps'] > 0, 12.0, -12.0)
        perfect_cls[:, b, slots, 8:] = float('-inf')
    losses, assign = GroundingDINOLoss(num_classes=T)(perfect_cls, perfect_box, None, None,
                                                       _text_mask(2), gts)
    for key in ('loss_bbox', 'loss_iou', 'd0.loss_bbox', 'd0.loss_iou'):
        assert losses[key].item() < 1e-5, key
    assert losses['loss_cls'] < 1e-3 < random_losses['loss_cls']
    for b, (q, g) in enumerate(assign):
        assert q.tolist() == (torch.arange(len(gts[b]['bboxes'])) * 3 + 1)[g].tolist()


def test_free_parameters_converge_to_gt():
    torch.manual_seed(0)
    gts = _gts((3, 2), seed=13)
    num_queries = 8
    cls = torch.nn.Parameter(torch.randn(1, 2, num_queries, T) * 0.1 - 2.0)
    box_logit = torch.nn.Parameter(torch.randn(1, 2, num_queries, 4) * 0.5)
    loss_fn = GroundingDINOLoss(num_classes=T)
    opt = torch.optim.Adam([cls, box_logit], lr=0.08)
    pad = torch.zeros(T, dtype=torch.bool)
    pad[8:] = True
    first = None
    for _ in range(150):
        logits = cls.masked_fill(pad, float('-inf'))
        losses, assign = loss_fn(logits, box_logit.sigmoid(), None, None, _text_mask(2), gts)
        total = sum(losses.values())
        first = first if first is not None else total.item()
        opt.zero_grad()
        total.backward()
        opt.step()
    assert total.item() < 0.1 * first
    boxes = box_logit.detach().sigmoid()[-1]
    probs = cls.detach().sigmoid()[-1]
    for b, (q, g) in enumerate(assign):
        torch.testing.assert_close(boxes[b, q], gts[b]['bboxes'][g], atol=0.02, rtol=0)
        maps = gts[b]['positive_maps'][g][:, :8]
        assert (probs[b, q, :8][maps > 0] > 0.5).all() and (probs[b, q, :8][maps == 0] < 0.5).all()
        others = torch.ones(num_queries, dtype=torch.bool)
        others[q] = False
        assert (probs[b, others, :8] < 0.5).all()


def test_bad_inputs_name_the_problem():
    loss = GroundingDINOLoss(num_classes=T)
    cls, box = _preds(1, 2, 5, grad=False)
    gts = _gts((1, 1))
    with pytest.raises(ValueError, match='2 gt entries|1 gt entries'):
        loss(cls, box, None, None, _text_mask(2), gts[:1])
    bad = [gts[0], dict(bboxes=gts[1]['bboxes'])]
    with pytest.raises(KeyError, match=r"batch_gt\[1\].*positive_maps"):
        loss(cls, box, None, None, _text_mask(2), bad)
    with pytest.raises(ValueError, match='denoising'):
        loss(cls, box, None, None, _text_mask(2), gts, dict(num_denoising_queries=10,
                                                            num_denoising_groups=1))
