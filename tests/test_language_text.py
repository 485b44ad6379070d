"""Text side: sub-sentence masks vs the original loop (mmdet) and transformers' vectorised version,
prompts, positive maps, text position encoding vs mmdet's formula."""
import math

import pytest
import torch

from llmvision.models.language import (
    build_category_prompt,
    build_prompt,
    chunk_names,
    spans_to_positive_map,
    sub_sentence_masks,
)
from llmvision.models.layers import coordinate_to_encoding

SPECIAL = [101, 102, 1012, 1029]


def loop_reference(input_ids):
    """The original Grounding-DINO / mmdet loop, written out as the spec."""
    bs, n = input_ids.shape
    mask = torch.eye(n, dtype=torch.bool).unsqueeze(0).repeat(bs, 1, 1)
    pos = torch.zeros(bs, n, dtype=torch.long)
    idxs = torch.nonzero(torch.isin(input_ids, torch.tensor(SPECIAL)))
    prev = 0
    for row, col in idxs.tolist():
        if col == 0 or col == n - 1:
            mask[row, col, col] = True
            pos[row, col] = 0
        else:
            mask[row, prev + 1:col + 1, prev + 1:col + 1] = True
            pos[row, prev + 1:col + 1] = torch.arange(0, col - prev)
        prev = col
    return mask, pos


@pytest.mark.parametrize('ids', [
    [[101, 7, 8, 1012, 9, 1012, 102]],
    [[101, 7, 8, 9, 1012, 102, 0, 0], [101, 7, 1012, 8, 1029, 9, 1012, 102]],
    [[101, 7, 8, 9, 10, 11, 12, 13]],  # truncated: no closing delimiter
])
def test_sub_sentence_mmdet_matches_loop(ids):
    ids = torch.tensor(ids)
    mask, pos = sub_sentence_masks(ids, SPECIAL, 'mmdet')
    ref_mask, ref_pos = loop_reference(ids)
    assert torch.equal(mask, ref_mask) and torch.equal(pos, ref_pos)


def test_sub_sentence_hf_matches_transformers():
    from transformers.models.mm_grounding_dino.modeling_mm_grounding_dino import (
        generate_masks_with_special_tokens_and_transfer_map as hf,
    )
    ids = torch.tensor([[101, 7, 8, 1012, 9, 10, 11, 1012, 102, 0], [101, 7, 1012, 8, 1029, 9, 1012, 102, 0, 0]])
    m, p = sub_sentence_masks(ids, SPECIAL, 'hf')
    rm, rp = hf(ids)
    assert torch.equal(m, rm) and torch.equal(p, rp)
    # the conventions differ only at the closing delimiters inside the caption
    _, p_mm = sub_sentence_masks(ids, SPECIAL, 'mmdet')
    assert p_mm[0].tolist() == [0, 0, 1, 2, 0, 1, 2, 3, 0, 0]
    assert p[0].tolist() == [0, 0, 1, 0, 0, 1, 2, 0, 0, 0]


def test_prompts_and_positive_maps():
    caption, spans = build_category_prompt(['cat', 'remote control'])
    assert caption == 'cat . remote control .' and spans == [[(0, 3)], [(6, 20)]]
    offsets = [(0, 0), (0, 3), (4, 5), (6, 12), (13, 20), (21, 22), (0, 0)]
    pmap = spans_to_positive_map(offsets, spans, 8)
    assert pmap.tolist() == [[0, 1, 0, 0, 0, 0, 0, 0], [0, 0, 0, 1, 1, 0, 0, 0]]
    assert build_prompt('a red dog .')[1] == [[(0, 9)]]
    with pytest.raises(ValueError, match='no phrases'):
        build_prompt('a dog', [])
    with pytest.raises(ValueError, match='outside caption'):
        build_prompt('a dog', [[[0, 40]]])
    with pytest.raises(ValueError, match='covers no token'):
        spans_to_positive_map(offsets[:2], [[(6, 20)]], 8)
    assert [len(c) for c in chunk_names([str(i) for i in range(85)], 40)] == [40, 40, 5]


def test_text_position_encoding_matches_mmdet_formula():
    pos = torch.tensor([[0, 1, 2, 5]])
    got = coordinate_to_encoding(pos[..., None].float(), 256)
    dim_t = 10000 ** (2 * (torch.arange(256) // 2) / 256)
    x = pos[..., None].float() * 2 * math.pi / dim_t
    ref = torch.stack((x[..., 0::2].sin(), x[..., 1::2].cos()), dim=3).flatten(2)
    assert torch.allclose(got, ref, atol=1e-6)
