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
        xattn.region_cross_attn.blocks[0].up_proj.weight.normal_(std=0.5)
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
                blk.up_proj.weight.fill_(0.01)
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


def _block_and_context(attn_residual=True):
    from llmvision.models.captioners import RegionCrossAttentionAdapter
    torch.manual_seed(0)
    adapter = RegionCrossAttentionAdapter(64, num_llm_layers=4, every=2, num_heads=4, num_points=2,
                                          rms_norm_eps=1e-5, attn_residual=attn_residual)
    memory = [torch.randn(2, 256, s, s) for s in (8, 4, 2, 1)]
    boxes = torch.tensor([[.5, .5, .2, .2], [.3, .6, .1, .3], [.6, .4, .2, .4]])
    ctx = adapter.build_context(3, memory, torch.tensor([0, 1, 1]), boxes)
    return adapter, ctx


def test_block_structure_is_the_released_one():
    """down_proj 896->256 (here 64->256), MSDA, zero-init up_proj, RMSNorm after it; no norm before."""
    from llmvision.models.captioners.region_cross_attn import RMSNorm
    adapter, ctx = _block_and_context()
    block = adapter.blocks[0]
    assert sorted(n for n, _ in block.named_parameters()) == [
        'attn.attention_weights.bias', 'attn.attention_weights.weight', 'attn.output_proj.bias',
        'attn.output_proj.weight', 'attn.sampling_offsets.bias', 'attn.sampling_offsets.weight',
        'attn.value_proj.bias', 'attn.value_proj.weight', 'down_proj.bias', 'down_proj.weight', 'norm.weight',
        'up_proj.bias', 'up_proj.weight']
    assert tuple(block.down_proj.weight.shape) == (256, 64) and tuple(block.up_proj.weight.shape) == (64, 256)
    assert isinstance(block.norm, RMSNorm) and block.norm.eps == 1e-5
    assert sorted(n for n, _ in adapter.ref_point_head.named_parameters()) == [
        '0.bias', '0.weight', '2.bias', '2.weight']
    assert tuple(adapter.ref_point_head[0].weight.shape) == (256, 512)
    hidden = torch.randn(3, 64) * 5
    assert block(hidden, ctx).abs().max() == 0                  # zero-init up_proj -> RMSNorm(0) = 0
    with torch.no_grad():
        block.up_proj.weight.normal_(std=0.1)
        block.norm.weight.uniform_(0.5, 1.5)
    q = block.down_proj(hidden)
    attn = block.attn(q.new_zeros(2, 2, 256).index_put(ctx['slots'], q), ctx['value'], ctx['reference_points'],
                      ctx['spatial_shapes'], ctx['level_start_index'], query_pos=ctx['query_pos'])[ctx['slots']]
    up = block.up_proj(attn + q)
    expected = up / torch.sqrt(up.pow(2).mean(-1, keepdim=True) + 1e-5) * block.norm.weight
    torch.testing.assert_close(block(hidden, ctx), expected)
    # a scaled input changes the output (no pre-norm swallows the scale)
    assert not torch.allclose(block(hidden * 3, ctx), block(hidden, ctx), atol=1e-3)
    no_res, ctx2 = _block_and_context(attn_residual=False)
    no_res.load_state_dict(adapter.state_dict())
    torch.testing.assert_close(no_res.blocks[0](hidden, ctx2),
                               block.norm(block.up_proj(attn)))


def test_block_is_identity_at_init_and_gradients_reach_down_proj_after_one_step(tokenizer):
    cap = build(tokenizer, region_cross_attn=dict(every=2, num_heads=4, num_points=2))
    plain = build(tokenizer)
    plain.load_state_dict(cap.state_dict(), strict=False)
    memory, queries, boxes, _, phrases = inputs()
    loss = cap.loss(memory, queries, boxes, [None, None], phrases)['loss_region_caption']
    torch.testing.assert_close(loss, plain.loss(memory, queries, boxes, [None, None], phrases)['loss_region_caption'])
    loss.backward()
    blocks = cap.region_cross_attn.blocks
    assert all(b.up_proj.weight.grad.abs().sum() > 0 for b in blocks)
    assert all(b.down_proj.weight.grad is None or b.down_proj.weight.grad.abs().sum() == 0 for b in blocks)
    opt = torch.optim.SGD([p for p in cap.parameters() if p.requires_grad], lr=1e-3)
    opt.step()
    opt.zero_grad()
    cap.loss(memory, queries, boxes, [None, None], phrases)['loss_region_caption'].backward()
    for b in blocks:      # once up_proj moved, the gradient flows down to the projection and the sampling
        assert b.down_proj.weight.grad.abs().sum() > 0 and b.attn.sampling_offsets.weight.grad.abs().sum() > 0
    # the zero-init sampling offsets / attention weights pass the box position on one step later
    assert cap.region_cross_attn.ref_point_head[0].weight.grad.abs().sum() == 0
    opt.step()
    opt.zero_grad()
    cap.loss(memory, queries, boxes, [None, None], phrases)['loss_region_caption'].backward()
    assert cap.region_cross_attn.ref_point_head[0].weight.grad.abs().sum() > 0


def test_padded_border_is_masked_out_of_the_values():
    """With valid ratios the padded bottom/right of each map is masked as the detector masks it."""
    import torch.nn.functional as F

    from llmvision.models.captioners.region_cross_attn import padding_mask
    from llmvision.models.detectors.grounding_dino import _valid_ratio
    pixel_pad = torch.zeros(2, 64, 64, dtype=torch.bool)
    pixel_pad[0, :, 40:] = True                      # image 0: 64 x 40 valid
    pixel_pad[1, 48:] = True                         # image 1: 48 x 64 valid
    shapes = torch.tensor([[8, 8], [4, 4], [2, 2], [1, 1]])
    level_masks = [F.interpolate(pixel_pad[None].float(), size=tuple(s))[0].bool() for s in shapes.tolist()]
    ratios = torch.stack([_valid_ratio(m) for m in level_masks], 1)
    assert torch.equal(padding_mask(shapes, ratios), torch.cat([m.flatten(1) for m in level_masks], 1))

    adapter, _ = _block_and_context()
    with torch.no_grad():
        adapter.blocks[0].up_proj.weight.normal_(std=0.1)
        for name, p in adapter.blocks[0].attn.named_parameters():
            if name.startswith(('sampling_offsets.weight', 'attention_weights.weight')):
                p.normal_(std=0.05)
    memory = [torch.randn(2, 256, h, w) for h, w in shapes.tolist()]
    boxes = torch.tensor([[.5, .5, .8, .8], [.4, .6, .9, .7]])
    index = torch.tensor([0, 1])
    hidden = torch.randn(2, 64)
    noisy = [m.clone() for m in memory]
    for m, pad in zip(noisy, level_masks):
        m.masked_fill_(pad[:, None], 100.0)          # change only padded positions
    out = [adapter.blocks[0](hidden, adapter.build_context(0, mem, index, boxes, ratios)) for mem in (memory, noisy)]
    torch.testing.assert_close(out[0], out[1])
    raw = [adapter.blocks[0](hidden, adapter.build_context(0, mem, index, boxes)) for mem in (memory, noisy)]
    assert not torch.allclose(raw[0], raw[1])
