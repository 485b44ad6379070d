"""REF-VLM decoders with anchor='pointer': cell centres, the picked cell (best / best inside the target), the
pointer loss, zero-offset start, and that a pointer-anchored box decoder learns toy grounding (the query names
an object hidden in a memory grid) where the plain decoder, at the same lr and steps, stays at the grid centre."""
import importlib.util
from pathlib import Path

import pytest
import torch

from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder
from llmvision.models.lmm.ref_vlm.keypoint_decoder import RefKeypointDecoder
from llmvision.models.lmm.ref_vlm.pointer_anchor import (
    PointerAnchor,
    cell_centres,
    cells_at,
    cells_in_boxes,
    pointer_loss,
)
from llmvision.models.lmm.ref_vlm.ref_queries import pad_ref_queries

ROOT = Path(__file__).resolve().parent.parent


def test_cell_centres_follow_the_memory_order():
    c = cell_centres([(2, 3), (1, 1)])
    assert c.shape == (7, 2)
    assert torch.allclose(c[:3], torch.tensor([[1 / 6, 0.25], [0.5, 0.25], [5 / 6, 0.25]]))
    assert torch.allclose(c[3], torch.tensor([1 / 6, 0.75])) and torch.allclose(c[6], torch.tensor([0.5, 0.5]))


def test_pointer_picks_the_best_cell_or_the_best_cell_inside_the_target():
    ptr = PointerAnchor(4)
    with torch.no_grad():
        ptr.q.weight.copy_(torch.eye(4) * 30)
        ptr.k.weight.copy_(torch.eye(4))
        ptr.q.bias.zero_()
        ptr.k.bias.zero_()
    memory = torch.eye(4)[None]  # 4 cells of a 2x2 map, cell i = one-hot i
    centres = cell_centres([(2, 2)])
    query = torch.eye(4)[[3, 1]][None] + 0.1  # [1, 2, 4]: queries looking for cells 3 and 1
    out = ptr(query, memory, torch.zeros_like(memory), [(2, 2)])
    anchors, feats, logits = out['anchors'], out['cell_features'], out['pointer_logits']
    assert torch.equal(out['cell_centres'], centres)
    assert anchors.shape == (1, 2, 2) and torch.equal(anchors[0], centres[[3, 1]])
    assert logits.shape == (1, 2, 4) and torch.allclose(feats[0], ptr.cell_proj(memory[0, [3, 1]]))
    # in training the pick stays inside the target box (here: the left column, cells 0 and 2)
    left = torch.tensor([[[0.25, 0.5, 0.5, 1.0]] * 2])
    anchors = ptr(query, memory, torch.zeros_like(memory), [(2, 2)], targets=left)['anchors']
    assert anchors[0, :, 0].tolist() == [0.25, 0.25]
    with pytest.raises(ValueError, match='num_levels'):
        ptr(query, memory, torch.zeros_like(memory), [(1, 2), (1, 2)])


def test_cells_at_finds_the_cell_of_a_point_on_every_level():
    shapes = [(4, 4), (2, 2), (1, 1)]
    idx = cells_at(torch.tensor([[0.9, 0.1], [0.3, 0.6]]), shapes)
    assert idx.tolist() == [[3, 16 + 1, 20], [2 * 4 + 1, 16 + 2, 20]]
    centres = cell_centres(shapes)
    # a multi-level pick: the anchor's cells on the other levels contain it
    ptr = PointerAnchor(3, num_levels=3)
    mem = torch.randn(1, 21, 3)
    out = ptr(torch.randn(1, 2, 3), mem, torch.zeros_like(mem), shapes)
    anchors, feats = out['anchors'], out['cell_features']
    cells = cells_at(anchors[0], shapes)
    expect = ptr.cell_proj(mem[0, cells].flatten(1))
    assert torch.allclose(feats[0], expect, atol=1e-6) and (centres[cells[:, 2]] == 0.5).all()


def test_cells_in_boxes_and_pointer_loss():
    centres = cell_centres([(2, 2)])  # (.25,.25) (.75,.25) (.25,.75) (.75,.75)
    boxes = torch.tensor([[[0.5, 0.25, 1.0, 0.5],  # the top row: cells 0, 1
                           [0.74, 0.74, 0.02, 0.02]]])  # smaller than a cell: the nearest cell, 3
    assert cells_in_boxes(boxes, centres).tolist() == [[[True, True, False, False], [False, False, False, True]]]
    logits = torch.log(torch.tensor([[[0.1, 0.2, 0.3, 0.4], [0.1, 0.2, 0.3, 0.4]]]))
    valid = torch.tensor([[True, True]])
    expect = -(torch.log(torch.tensor(0.3)) + torch.log(torch.tensor(0.4))) / 2
    assert pointer_loss(logits, boxes, valid, centres).item() == pytest.approx(expect.item(), rel=1e-5)
    only_first = pointer_loss(logits, boxes, torch.tensor([[True, False]]), centres)
    assert only_first.item() == pytest.approx(-torch.log(torch.tensor(0.3)).item(), rel=1e-5)
    assert pointer_loss(logits, boxes, torch.zeros(1, 2, dtype=torch.bool), centres).item() == 0


def test_pointer_decoders_start_on_their_cells_and_reject_unknown_anchors():
    torch.manual_seed(0)
    kw = dict(llm_dim=12, in_channels=[8], embed_dims=16, num_layers=2, num_heads=2, ffn_dim=32, num_queries=4)
    maps = [torch.randn(2, 8, 4, 4)]
    q = pad_ref_queries([torch.randn(2, 12), torch.randn(1, 12)], [[0, 0], [0]], [0, 1],
                        boxes=[torch.rand(2, 4) * 0.4 + 0.3, torch.rand(1, 4) * 0.4 + 0.3])
    box = RefBoxDecoder(anchor='pointer', **kw).eval()
    out = box(q, maps)
    centres = cell_centres([(4, 4)])
    picked = centres[out['pointer_logits'].argmax(-1)]  # [B, Q, 2]
    assert torch.allclose(out['boxes'][..., :2], picked.expand(2, -1, -1, -1), atol=1e-5)
    box.train()
    out = box(q, maps)
    inside = cells_in_boxes(q.boxes, centres)  # the training pick lies in the target box
    cell = ((out['boxes'][-1, ..., None, :2] - centres) ** 2).sum(-1).argmin(-1)
    assert torch.gather(inside, 2, cell[..., None])[q.valid].all()
    terms = box.loss(out, q)
    assert terms['box'].item() == pytest.approx((5 * terms['box_l1'] + 2 * terms['box_giou']
                                                 + terms['box_pointer']).item(), rel=1e-5)
    terms['box'].backward()
    assert box.pointer.q.weight.grad.abs().sum() > 0 and box.pointer.cell_proj.weight.grad.abs().sum() > 0
    kpt = RefKeypointDecoder(anchor='pointer', num_keypoints=3, **kw).eval()
    out = kpt(q, maps)
    assert out['boxes'].shape == (2, 2, 2, 4) and out['keypoints'].shape == (2, 2, 2, 3, 2)
    assert out['pointer_logits'].shape == (2, 2, 16)  # the box query's pointer: one per <REF>
    # keypoints start on their <REF>'s cell
    assert torch.allclose(out['keypoints'], out['boxes'][..., None, :2].expand(-1, -1, -1, 3, -1), atol=1e-5)
    with pytest.raises(ValueError, match="'corner'"):
        RefBoxDecoder(anchor='corner', **kw)


def _toy_grounding_error(anchor: str) -> float:
    """``benchmarks/ref_decoder_grounding.py``'s toy task, smaller: mean centre error on 4 fresh batches after 120
    steps (eval mode: the pointer picks without the target); memory = a 4 x 4 noise grid with 3 prototypes at
    random cells, the query names one prototype, the target is its cell."""
    spec = importlib.util.spec_from_file_location('ref_decoder_grounding',
                                                  ROOT / 'benchmarks' / 'ref_decoder_grounding.py')
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    return bench.train_decoder(120, 32, anchor, g=4, c=16, k=3, llm_dim=24, eval_batches=4,
                               decoder=dict(embed_dims=32, num_layers=2, num_heads=4, ffn_dim=64, num_queries=4))


def test_pointer_anchored_decoder_learns_toy_grounding():
    pointer, plain = _toy_grounding_error('pointer'), _toy_grounding_error('none')
    # chance (the grid centre) is 0.25; half a cell is 0.125
    assert pointer < 0.05 and plain > 0.15, (pointer, plain)
