"""Region cross-attention adapters inside the tiny LLM: identity at init, memory-dependent afterwards,
consistent under gradient checkpointing, active at the first generation step."""
import pytest
import torch

from helpers import build_captioner as build
from helpers import captioner_inputs as inputs
from helpers import randomize_lora_b


def test_default_layers_are_every_fourth_from_the_first(tokenizer):
    from llmvision.models.captioners import RegionCrossAttentionAdapter
    assert RegionCrossAttentionAdapter(64, num_llm_layers=24).layer_ids == [0, 4, 8, 12, 16, 20]
    cap = build(tokenizer, region_cross_attn=dict(every=2, num_heads=4, num_points=2))
    assert cap.region_cross_attn.layer_ids == [0, 2]
    with pytest.raises(ValueError, match='within'):
        RegionCrossAttentionAdapter(64, num_llm_layers=4, layers=[4])


def test_region_cross_attention_is_identity_at_init_and_then_matters(tokenizer):
    plain = build(tokenizer).eval()
    xattn = build(tokenizer, region_cross_attn=dict(layers=[1, 3], num_heads=4, num_points=2)).eval()
    xattn.load_state_dict(plain.state_dict(), strict=False)
    assert xattn.region_cross_attn.layer_ids == [1, 3]
    memory, queries, boxes, _, phrases = inputs()
    no_captions = [None, None]          # region loss only (faster)
    a = plain.loss(memory, queries, boxes, no_captions, phrases)['loss_region_caption']
    b = xattn.loss(memory, queries, boxes, no_captions, phrases)['loss_region_caption']
    torch.testing.assert_close(a, b)
    with torch.no_grad():
        xattn.region_cross_attn.blocks[0].out_proj.weight.normal_(std=0.5)
    c = xattn.loss(memory, queries, boxes, no_captions, phrases)['loss_region_caption']
    assert not torch.allclose(a, c)
    # the update reads the memory around the region boxes: change only level 0 of image 0
    memory2 = [m.clone() for m in memory]
    memory2[0][0] += 1.0
    d = xattn.loss(memory2, queries, boxes, no_captions, phrases)['loss_region_caption']
    assert not torch.allclose(c, d)
    # ... and at the first step of generation
    texts = xattn.generate_regions(memory, queries, boxes, max_new_tokens=2)
    assert [len(t) for t in texts] == [3, 2]


def test_cross_attention_with_gradient_checkpointing(tokenizer):
    kwargs = dict(region_cross_attn=dict(every=2, num_heads=4, num_points=2))
    ref = build(tokenizer, **kwargs)
    ckpt = build(tokenizer, gradient_checkpointing=True, **kwargs)
    for cap in (ref, ckpt):
        randomize_lora_b(cap)
        with torch.no_grad():
            for blk in cap.region_cross_attn.blocks:
                blk.out_proj.weight.fill_(0.01)
    grads = []
    for cap in (ref, ckpt):
        memory, queries, boxes, _, phrases = inputs()
        cap.loss(memory, queries, boxes, [None, None], phrases)['loss_region_caption'].backward()
        grads.append({n: p.grad for n, p in cap.named_parameters()
                      if p.requires_grad and ('region_cross_attn' in n or 'lora_A' in n)})
    assert grads[0]['region_cross_attn.blocks.1.attn.attention_weights.weight'].abs().sum() > 0
    assert grads[0].keys() == grads[1].keys()
    for name, g in grads[0].items():
        torch.testing.assert_close(g, grads[1][name], rtol=1e-4, atol=1e-6, msg=name)


def test_context_groups_regions_per_image_and_scales_references():
    from llmvision.models.captioners import RegionCrossAttentionAdapter
    torch.manual_seed(0)
    adapter = RegionCrossAttentionAdapter(64, num_llm_layers=4, every=2, num_heads=4, num_points=2)
    memory = [torch.randn(3, 256, s, s + 1) for s in (8, 4, 2, 1)]
    image_index = torch.tensor([0, 0, 2])
    boxes = torch.tensor([[.5, .5, .2, .2], [.3, .3, .1, .1], [.6, .4, .2, .4]])
    ratios = torch.rand(3, 4, 2) * 0.5 + 0.5
    ctx = adapter.build_context(7, memory, image_index, boxes, ratios)
    rows, slot = ctx['slots']
    assert rows.tolist() == [0, 0, 1] and slot.tolist() == [0, 1, 0]
    assert ctx['position'] == 7 and ctx['num_regions'] == 3
    assert ctx['spatial_shapes'].tolist() == [[8, 9], [4, 5], [2, 3], [1, 2]]
    assert ctx['level_start_index'].tolist() == [0, 72, 92, 98]
    torch.testing.assert_close(ctx['value'][1, 72:92], memory[1][2].flatten(1).t())
    assert ctx['reference_points'].shape == (2, 2, 4, 4) and ctx['query_pos'].shape == (2, 2, 256)
    torch.testing.assert_close(ctx['reference_points'][1, 0, 3], boxes[2] * ratios[2, 3].repeat(2))
    torch.testing.assert_close(ctx['reference_points'][0, 1, 0], boxes[1] * ratios[0, 0].repeat(2))
    with pytest.raises(ValueError, match='4 memory levels'):
        adapter.build_context(0, memory[:3], image_index, boxes)
