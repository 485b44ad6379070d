"""LLMCaptioner on a tiny random Qwen2: LoRA parity with peft, frozen base, skips/truncation counters, bf16,
greedy generation. The ``tokenizer`` fixture is in conftest.py, ``build`` / ``inputs`` in helpers.py."""
import copy

import pytest
import torch
import torch.nn as nn

from helpers import build_captioner as build
from helpers import captioner_inputs as inputs
from helpers import randomize_lora_b
from llmvision.models.captioners import tiny_captioner_cfg
from llmvision.models.llm.tiny import lora_cfg


def total(losses):
    return losses['loss_image_caption'] + losses['loss_region_caption']


def test_lora_output_equals_peft_merged_and_hand_merged_model(tokenizer):
    cap = build(tokenizer, lora=lora_cfg(r=4, lora_alpha=8)).eval()
    randomize_lora_b(cap)
    memory, queries, boxes, captions, phrases = inputs()
    ours = cap.loss(memory, queries, boxes, captions, phrases)['loss_image_caption']

    visual = cap.image_tokenizer(memory)
    answers = [cap.image_prompt.encode_answer(c)[0] for c in captions]
    embeds, labels, mask, _ = cap._embed_sequences(cap.image_prompt, visual, answers)
    merged = copy.deepcopy(cap.llm).merge_and_unload().eval()
    ref = merged(inputs_embeds=embeds, attention_mask=mask.long(), labels=labels)
    torch.testing.assert_close(ours, ref.loss, rtol=1e-5, atol=1e-5)

    # hand merge: W + alpha / r * B @ A on a plain copy of the base weights
    plain = copy.deepcopy(merged)
    state = cap.causal_lm.state_dict()
    with torch.no_grad():
        for name, module in plain.named_modules():
            if isinstance(module, nn.Linear) and f'{name}.base_layer.weight' in state:
                a, b = state[f'{name}.lora_A.default.weight'], state[f'{name}.lora_B.default.weight']
                module.weight.copy_(state[f'{name}.base_layer.weight'] + 2.0 * b @ a)
    hand = plain(inputs_embeds=embeds, attention_mask=mask.long()).logits
    unmerged = cap.causal_lm(inputs_embeds=embeds, attention_mask=mask.long()).logits
    torch.testing.assert_close(hand, ref.logits, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(unmerged, ref.logits, rtol=1e-4, atol=1e-5)
    with cap.llm.disable_adapter():
        base_only = cap.causal_lm(inputs_embeds=embeds, attention_mask=mask.long()).logits
    assert not torch.allclose(base_only, ref.logits, atol=1e-3)      # the adapters do change the output


def test_only_adapters_train_and_base_llm_stays_bitwise_frozen(tokenizer):
    cap = build(tokenizer, region_cross_attn=dict(every=2, num_heads=4, num_points=2))
    trainable = [n for n, p in cap.named_parameters() if p.requires_grad]
    allowed = ('image_tokenizer.', 'region_projector.', 'region_cross_attn.')
    assert trainable and all('lora_' in n or n.startswith(allowed) for n in trainable), trainable
    assert any('lora_A' in n for n in trainable) and any(n.startswith('region_cross_attn.') for n in trainable)
    base = {n: p.detach().clone() for n, p in cap.named_parameters() if not p.requires_grad}
    assert any('embed_tokens' in n for n in base) and any('base_layer' in n for n in base)
    adapters = {n: p.detach().clone() for n, p in cap.named_parameters() if p.requires_grad}

    opt = torch.optim.AdamW(cap.parameters(), lr=1e-2, weight_decay=0.0)   # a change means a gradient
    for step in range(3):
        memory, queries, boxes, captions, phrases = inputs(grad=True)
        opt.zero_grad()
        total(cap.loss(memory, queries, boxes, captions, phrases)).backward()
        # levels 1, 2 feed the image tokens; all 4 feed cross-attention once its zero-init up_proj moved
        levels = memory if step > 0 else memory[1:3]
        assert all(m.grad is not None and m.grad.abs().sum() > 0 for m in levels)
        assert all(q.grad is not None and q.grad.abs().sum() > 0 for q in queries)
        assert all(b.grad is None for b in boxes)        # boxes are detached (LLMDet)
        opt.step()
    for n, p in cap.named_parameters():
        if n in base:
            assert p.grad is None and torch.equal(p, base[n]), n
    changed = {n for n, p in cap.named_parameters() if n in adapters and not torch.equal(p, adapters[n])}
    for prefix in ('image_tokenizer.projector', 'image_tokenizer.separators', 'region_projector',
                   'region_cross_attn.blocks.0.up_proj', 'region_cross_attn.blocks.0.down_proj',
                   'region_cross_attn.ref_point_head', 'lora_A', 'lora_B'):
        assert any(prefix in n for n in changed), prefix


def test_missing_caption_is_skipped_and_counted(tokenizer):
    cap = build(tokenizer).eval()
    memory, queries, boxes, captions, phrases = inputs()
    out = cap.loss(memory, queries, boxes, [None, captions[1]], phrases)
    assert out['num_image_caption_missing'].item() == 1
    alone = cap.loss([m[1:] for m in memory], queries[1:], boxes[1:], captions[1:], phrases[1:])
    torch.testing.assert_close(out['loss_image_caption'], alone['loss_image_caption'])

    memory = [m.requires_grad_(True) for m in memory]
    out = cap.loss(memory, queries, boxes, [None, '  '], phrases)
    assert out['num_image_caption_missing'].item() == 2 and out['loss_image_caption'].item() == 0
    total(out).backward()
    assert cap.counters['image_caption_missing'] == 3


def test_overlong_caption_is_truncated_and_counted(tokenizer):
    cap = build(tokenizer, max_image_caption_len=5, max_region_caption_len=3).eval()
    memory, queries, boxes, captions, phrases = inputs()
    out = cap.loss(memory, queries, boxes, captions, [['a very long phrase about a red circle'] * 3, ['x', 'y']])
    assert out['num_image_caption_truncated'].item() == 2
    assert out['num_region_caption_truncated'].item() == 3        # 'x<|im_end|>\n' fits in 3
    assert torch.isfinite(total(out))
    assert cap.counters['image_caption_truncated'] == 2


def test_sequence_limit_counts_visual_tokens_and_prompt(tokenizer):
    """LLMDet's ``lmm_max_token_length`` cuts the whole sequence: a caption that fits the answer limit alone
    is cut when the prompt and the visual tokens are counted too."""
    caption = 'a red circle and a blue square on a photo of a street.'
    loose = build(tokenizer, max_image_caption_len=64, max_image_sequence_len=None).eval()
    ids, cut = loose.image_prompt.encode_answer(caption)
    assert not cut and 8 < len(ids) < 64
    num_visual = loose.image_tokenizer.num_tokens
    assert num_visual == 26
    prefix = loose.image_prompt.num_prefix_tokens(num_visual)
    text_only = prefix - num_visual + len(ids)           # what a text-only count would see
    limit = prefix + len(ids) - 4                          # fits without the image tokens, not with them
    assert text_only <= limit
    cap = build(tokenizer, max_image_caption_len=64, max_image_sequence_len=limit).eval()
    assert cap.image_prompt.answer_limit == len(ids) - 4
    kept, cut = cap.image_prompt.encode_answer(caption)
    assert cut and kept == ids[:len(ids) - 4]
    input_ids, labels, mask, vstart = cap.image_prompt.build_batch([kept], num_visual)
    assert input_ids.shape[1] == limit and int(mask.sum()) == limit
    memory, queries, boxes, captions, phrases = inputs()
    out = cap.loss(memory, queries, boxes, [caption, caption], phrases)
    assert out['num_image_caption_truncated'].item() == 2
    assert loose.loss(memory, queries, boxes, [caption, caption], phrases)['num_image_caption_truncated'] == 0
    # the region branch: one visual token, the released cut of 40 on the whole region sequence
    region = build(tokenizer, max_region_caption_len=40, max_region_sequence_len=40).region_prompt
    assert region.answer_limit == 40 - region.num_prefix_tokens(1)
    with pytest.raises(ValueError, match='no room for an answer'):
        build(tokenizer, max_image_sequence_len=prefix)


def test_images_without_regions_and_region_subsampling(tokenizer):
    cap = build(tokenizer, max_regions=2).eval()
    memory, queries, boxes, captions, phrases = inputs(regions=(5, 0))
    out = cap.loss(memory, queries, boxes, captions, phrases)
    assert out['num_images_without_regions'].item() == 1 and out['num_regions_dropped'].item() == 3
    assert out['loss_region_caption'].item() > 0

    memory, queries, boxes, captions, phrases = inputs(regions=(0, 0), grad=True)
    out = cap.loss(memory, queries, boxes, captions, phrases)
    assert out['loss_region_caption'].item() == 0 and out['num_images_without_regions'].item() == 2
    total(out).backward()
    assert cap.region_projector.proj[0].weight.grad is not None        # zero loss still reaches params


def test_bad_inputs_raise_clear_errors(tokenizer):
    cap = build(tokenizer)
    memory, queries, boxes, captions, phrases = inputs()
    with pytest.raises(ValueError, match='image 0'):
        cap.loss(memory, queries, boxes, captions, [phrases[0][:1], phrases[1]])
    with pytest.raises(ValueError, match='region_boxes has 1 entries'):
        cap.loss(memory, queries, boxes[:1], captions, phrases)
    with pytest.raises(TypeError, match='image 1'):
        cap.loss(memory, queries, boxes, [captions[0], 3], phrases)


def test_bf16_llm_with_fp32_projectors(tokenizer):
    cfg = tiny_captioner_cfg(tokenizer)
    torch.manual_seed(0)
    llm = cfg['llm']['type'](**{k: v for k, v in cfg['llm'].items() if k != 'type'}).to(torch.bfloat16)
    cap = build(tokenizer, llm=llm)
    assert cap.llm_dtype == torch.bfloat16 and cap.region_projector.pos_proj.weight.dtype == torch.float32
    memory, queries, boxes, captions, phrases = inputs()
    out = cap.loss(memory, queries, boxes, captions, phrases)
    assert out['loss_image_caption'].dtype == torch.float32 and torch.isfinite(total(out))
    total(out).backward()
    grad = cap.image_tokenizer.projector.proj[0].weight.grad
    assert grad is not None and grad.dtype == torch.float32 and grad.abs().sum() > 0
    assert all(isinstance(t, str) for t in cap.generate([m[:1] for m in memory], max_new_tokens=3))


def test_generate_returns_strings_and_stops(tokenizer):
    cap = build(tokenizer)
    memory, queries, boxes, _, _ = inputs()
    texts = cap.generate(memory, max_new_tokens=4)
    assert len(texts) == 2 and all(isinstance(t, str) for t in texts)
    assert cap.training                       # mode restored
    assert cap.generate_regions(memory, [q[:0] for q in queries], [b[:0] for b in boxes]) == [[], []]


def test_default_1130_image_tokens_through_the_llm(tokenizer):
    cap = build(tokenizer, image_token_sizes=(20, 27)).eval()
    memory = [torch.randn(1, 256, s, s) for s in (40, 20, 10, 5)]
    visual = cap.image_tokenizer(memory)
    assert visual.shape == (1, 1130, 64)
    answer = cap.image_prompt.encode_answer('a red circle.')[0]
    embeds, labels, mask, vstart = cap._embed_sequences(cap.image_prompt, visual, [answer])
    assert embeds.shape[1] == cap.image_prompt.num_prefix_tokens(1130) + len(answer)
    torch.testing.assert_close(embeds[0, vstart:vstart + 1130], visual[0])
    assert (labels != -100).sum() == len(answer)
    out = cap.loss(memory, [torch.zeros(0, 256)], [torch.zeros(0, 4)], ['a red circle.'], [[]])
    assert torch.isfinite(out['loss_image_caption'])


def test_missing_local_files_raise_clear_errors(tokenizer, tmp_path):
    from transformers import AutoModelForCausalLM
    missing = str(tmp_path / 'no-such-llm')
    with pytest.raises(FileNotFoundError, match='no-such-llm.*never downloads'):
        build(tokenizer, llm=dict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path=missing))
    with pytest.raises(FileNotFoundError, match='tokenizer directory'):
        build(missing)
