"""Captioner parts without an LLM: sine box embedding, image tokens (1130 by default), prompts and labels."""
import math

import pytest
import torch
import torch.nn.functional as F

from llmvision.models.captioners import IGNORE_INDEX, CaptionPrompt, ImageTokenizer, box_sine_embedding, grid_cell_boxes


@pytest.fixture(scope='module')
def tokenizer(synthetic_data):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))


def test_box_sine_embedding_matches_scalar_formula():
    torch.manual_seed(0)
    boxes = torch.rand(2, 3, 4)
    emb = box_sine_embedding(boxes, num_feats=8)
    assert emb.shape == (2, 3, 32)
    box = boxes[1, 2].tolist()
    expected = []
    for coord in (box[1], box[0], box[2], box[3]):          # DINO order: y, x, w, h
        for i in range(8):
            angle = coord * 2 * math.pi / (10000 ** (2 * (i // 2) / 8))
            expected.append(math.sin(angle) if i % 2 == 0 else math.cos(angle))
    torch.testing.assert_close(emb[1, 2], torch.tensor(expected), atol=1e-5, rtol=1e-5)
    with pytest.raises(ValueError, match=r'\[\.\.\., 4\]'):
        box_sine_embedding(torch.rand(3, 2))


def test_grid_cell_boxes_row_major():
    xyxy = grid_cell_boxes(2, 'xyxy')
    torch.testing.assert_close(xyxy, torch.tensor([[0, 0, .5, .5], [.5, 0, 1, .5], [0, .5, .5, 1], [.5, .5, 1, 1]]))
    torch.testing.assert_close(grid_cell_boxes(2)[1], torch.tensor([.75, .25, .5, .5]))


def test_default_image_tokens_are_1130():
    torch.manual_seed(0)
    tok = ImageTokenizer(feat_dims=256, hidden_size=32)
    assert tok.num_tokens == 20 * 20 + 1 + 27 * 27 == 1130
    memory = [torch.randn(2, 256, s, s) for s in (40, 20, 10, 5)]   # a 320x320 image, strides 8..64
    out = tok(memory)
    assert out.shape == (2, 1130, 32)
    torch.testing.assert_close(out[:, 400], tok.separators[0].expand(2, -1))


def test_image_tokens_are_projected_resized_maps_with_cell_positions():
    torch.manual_seed(0)
    tok = ImageTokenizer(feat_dims=8, hidden_size=16, levels=(2, 1), sizes=(3, 4))
    memory = [torch.randn(1, 8, s, s) for s in (16, 8, 4, 2)]
    out = tok(memory)
    assert out.shape == (1, 9 + 1 + 16, 16)
    for lvl, size, start in ((2, 3, 0), (1, 4, 10)):
        feats = F.interpolate(memory[lvl], size=(size, size), mode='bilinear', align_corners=False)
        feats = feats.flatten(2).transpose(1, 2)
        expected = tok.projector(feats, grid_cell_boxes(size)[None])
        torch.testing.assert_close(out[:, start:start + size * size], expected)


def test_image_tokens_crop_padding_by_valid_ratios():
    torch.manual_seed(0)
    tok = ImageTokenizer(feat_dims=8, hidden_size=16, levels=(1,), sizes=(4,))
    clean = [torch.randn(1, 8, 6, 4) for _ in range(2)]
    padded = [F.pad(m, (0, 4, 0, 2), value=1e3) for m in clean]       # -> 8 x 8, garbage in the pad
    ratios = torch.tensor([[[4 / 8, 6 / 8]] * 2])                        # [B, L, (w, h)]
    torch.testing.assert_close(tok(padded, ratios), tok(clean))
    assert not torch.allclose(tok(padded), tok(clean))
    tok_avg = ImageTokenizer(feat_dims=8, hidden_size=16, levels=(1,), sizes=(2,), resize_mode='adaptive_avg')
    m = torch.randn(1, 8, 4, 4)
    pooled = F.avg_pool2d(m, 2).flatten(2).transpose(1, 2)
    torch.testing.assert_close(tok_avg([m, m]), tok_avg.projector(pooled, grid_cell_boxes(2)[None]))


def test_prompt_labels_cover_exactly_the_answer(tokenizer):
    prompt = CaptionPrompt(tokenizer, 'Describe the image in detail.', max_answer_len=64)
    captions = ['a red circle is left of a blue square.', 'two green triangles.']
    answers = [prompt.encode_answer(c)[0] for c in captions]
    input_ids, labels, mask, vstart = prompt.build_batch(answers, num_visual=5)
    prefix_len = prompt.num_prefix_tokens(5)
    assert vstart == len(prompt.before_ids)
    for i, caption in enumerate(captions):
        n = prefix_len + len(answers[i])
        assert mask[i].sum() == n and bool(mask[i, :n].all())
        assert (labels[i, :prefix_len] == IGNORE_INDEX).all() and (labels[i, n:] == IGNORE_INDEX).all()
        supervised = labels[i][labels[i] != IGNORE_INDEX]
        assert supervised.tolist() == input_ids[i, prefix_len:n].tolist()
        assert tokenizer.decode(supervised) == caption + '<|im_end|>\n'
        # the whole sequence is the chat template's rendering, with the visual span at the placeholder
        rendered = tokenizer.apply_chat_template(
            [{'role': 'user', 'content': '<image>\nDescribe the image in detail.'},
             {'role': 'assistant', 'content': caption}], tokenize=False)
        text = (tokenizer.decode(input_ids[i, :vstart]) + '<image>'
                + tokenizer.decode(input_ids[i, vstart + 5:n]))
        assert text == rendered
    assert prompt.stop_ids == (tokenizer.convert_tokens_to_ids('<|im_end|>'),)


def test_prompt_truncates_long_answers(tokenizer):
    prompt = CaptionPrompt(tokenizer, 'Describe the region in a phrase.', max_answer_len=6)
    ids, cut = prompt.encode_answer('a small red circle in the top left of the image')
    assert cut and len(ids) == 6
    ids, cut = prompt.encode_answer('cat')
    assert not cut and tokenizer.decode(ids) == 'cat<|im_end|>\n'


def test_prompt_errors_are_clear(tokenizer):
    with pytest.raises(ValueError, match='placeholder'):
        CaptionPrompt(tokenizer, 'look at <image>', max_answer_len=4)

    class NoTemplate:
        chat_template = None
    with pytest.raises(ValueError, match='chat_template'):
        CaptionPrompt(NoTemplate(), 'x', max_answer_len=4)


def test_image_tokens_reject_wrong_channels():
    tok = ImageTokenizer(feat_dims=8, hidden_size=16, levels=(1,), sizes=(2,))
    with pytest.raises(ValueError, match=r'memory level 1 must be \[B, 8, H, W\]'):
        tok([torch.randn(1, 8, 4, 4), torch.randn(1, 4, 4, 4)])
    with pytest.raises(ValueError, match='needs memory levels'):
        tok([torch.randn(1, 8, 4, 4)])
