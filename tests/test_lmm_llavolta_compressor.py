"""LLaVolta visual-token compressor on tiny random Qwen2 / LLaMA decoders: exactness at S = 1 against
transformers' own forward, pooled token counts per layer (forward hooks), hand-made pooling cases,
mixed text-only + image batches, gradient checkpointing, KV-cache decoding and the compression ratio."""
import math

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from llmvision.models.lmm.compressor import VisualTokenCompressor, compression_ratio
from llmvision.models.lmm.visual_pooling import pool_visual_spans
from llmvision.structures.lmm_sample import IGNORE_INDEX

H = 32


def tiny_llm(kind='qwen2', attn='sdpa', layers=4, seed=0):
    cls = Qwen2Config if kind == 'qwen2' else LlamaConfig
    cfg = cls(vocab_size=64, hidden_size=H, intermediate_size=64, num_hidden_layers=layers, num_attention_heads=4,
              num_key_value_heads=2, max_position_embeddings=256)
    cfg._attn_implementation = attn
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(cfg).eval()


def batch(lengths, spans, left_pad=False, seed=1):
    """Rows of the given lengths padded to the longest; spans[b] = list of (start, length) of images."""
    g = torch.Generator().manual_seed(seed)
    B, T = len(lengths), max(lengths)
    x = torch.randn(B, T, H, generator=g)
    mask = torch.zeros(B, T, dtype=torch.long)
    vis = torch.zeros(B, T, dtype=torch.bool)
    starts = torch.zeros(B, T, dtype=torch.bool)
    for b, n in enumerate(lengths):
        off = T - n if left_pad else 0
        mask[b, off:off + n] = 1
        for s, n_img in spans[b]:
            vis[b, off + s:off + s + n_img] = True
            starts[b, off + s] = True
    pos = (mask.cumsum(-1) - 1).clamp(min=0)
    return x, mask, pos, vis, starts


@pytest.mark.parametrize('kind,attn', [('qwen2', 'sdpa'), ('llama', 'sdpa'), ('qwen2', 'eager')])
def test_stride_one_equals_uncompressed(kind, attn):
    llm = tiny_llm(kind, attn)
    x, mask, pos, vis, _ = batch([20, 14], [[(3, 9)], [(2, 5)]])
    ref = llm.model(inputs_embeds=x, attention_mask=mask, position_ids=pos).last_hidden_state
    real = mask.bool()
    for layer in (-1, 0, 2):  # S = 1 still runs the pooling step (rotary and masks rebuilt)
        out = VisualTokenCompressor(layer=layer, stride=1)(llm, x, mask, pos, vis)
        assert torch.equal(out.attention_mask, mask)
        assert torch.equal(out.hidden_states[real], ref[real])
    # a real pooling changes the output (the test can fail)
    comp = VisualTokenCompressor(layer=2, stride=3).train()
    assert not torch.allclose(comp(llm, x, mask, pos, vis).hidden_states[1, :4], ref[1, :4])


def test_layers_before_k_see_all_tokens_after_k_the_pooled_count():
    llm = tiny_llm(layers=6)
    n_img, stride, k = 24, 4, 3
    x, mask, pos, vis, starts = batch([40], [[(5, n_img)]])
    seen = []
    hooks = [layer.register_forward_pre_hook(lambda m, a, kw: seen.append(a[0].shape[1] if a else
                                                                          kw['hidden_states'].shape[1]),
                                             with_kwargs=True) for layer in llm.model.layers]
    out = VisualTokenCompressor(layer=k, stride=stride).train()(llm, x, mask, pos, vis)
    for h in hooks:
        h.remove()
    pooled = 40 - n_img + n_img // stride
    assert seen == [40] * k + [pooled] * (6 - k)
    assert out.visual_tokens_per_layer.tolist() == [n_img] * k + [n_img // stride] * (6 - k)
    assert out.hidden_states.shape[1] == pooled


def test_pooling_hand_made_sequence():
    # row 0: text(2) img A (5 tokens) img B (3 tokens) back to back, text(3); row 1: text only, shorter
    T = 13
    vis = torch.zeros(2, T, dtype=torch.bool)
    vis[0, 2:10] = True
    starts = torch.zeros(2, T, dtype=torch.bool)
    starts[0, 2] = starts[0, 7] = True
    mask = torch.ones(2, T, dtype=torch.long)
    mask[1, 9:] = 0
    pos = torch.arange(T).expand(2, T) + 1000  # large positions: fp16 would round x.5 away above 1024
    labels = torch.full((2, T), IGNORE_INDEX)
    labels[0, 10:] = torch.tensor([7, 8, 9])
    labels[1, 4:9] = torch.tensor([1, 2, 3, 4, 5])
    x = torch.arange(2 * T, dtype=torch.float32).view(2, T, 1)
    p = pool_visual_spans(x, pos, mask, vis, stride=2, labels=labels, span_starts=starts)
    # A: windows [2,3] [4,5] [6] (partial: its own size), B: [7,8] [9]
    assert p.position_ids[0, :10].tolist() == [1000, 1001, 1002.5, 1004.5, 1006, 1007.5, 1009, 1010, 1011, 1012]
    assert p.window_size[0].tolist() == [1, 1, 2, 2, 1, 2, 1, 1, 1, 1]
    assert p.hidden_states[0, :10, 0].tolist() == [0, 1, 2.5, 4.5, 6, 7.5, 9, 10, 11, 12]
    assert p.labels[0].tolist() == [IGNORE_INDEX] * 7 + [7, 8, 9]
    assert p.source_index[0].tolist() == [0, 1, 2, 4, 6, 7, 9, 10, 11, 12]
    assert p.attention_mask[0].tolist() == [1] * 10
    assert p.visual_mask[0, :10].tolist() == [False, False] + [True] * 5 + [False] * 3
    # the text-only row keeps its real tokens (its padding is dropped, then re-added up to T' = 10)
    assert p.hidden_states.shape[1] == 10 and torch.equal(p.labels[1], labels[1, :10])
    assert torch.equal(p.position_ids[1, :9], pos[1, :9].double()) and p.attention_mask[1].sum() == 9
    assert p.position_ids.dtype == torch.float64
    # without span_starts the two images form one run of 8: windows of 2 straddle A/B
    assert pool_visual_spans(x, pos, mask, vis, 2).window_size[0, :7].tolist() == [1, 1, 2, 2, 2, 2, 1]
    # left padding stays on the left
    lm = torch.ones(2, 6, dtype=torch.long)
    lm[1, :2] = 0
    lv = torch.zeros(2, 6, dtype=torch.bool)
    lv[0, 1:5] = True
    q = pool_visual_spans(torch.zeros(2, 6, 1), torch.arange(6).expand(2, 6), lm, lv, 4)
    assert q.attention_mask.tolist() == [[0, 1, 1, 1], [1, 1, 1, 1]]  # padding dropped, rows right-aligned


@pytest.mark.parametrize('kind', ['qwen2', 'llama'])
def test_mixed_text_only_and_image_batch_matches_each_alone(kind):
    llm = tiny_llm(kind)
    lengths, spans = [22, 11, 30], [[(2, 12)], [], [(1, 8), (12, 10)]]
    x, mask, pos, vis, starts = batch(lengths, spans, seed=3)
    comp = VisualTokenCompressor(layer=1, stride=4).train()
    out = comp(llm, x, mask, pos, vis, span_starts=starts)
    for b, n in enumerate(lengths):
        one = comp(llm, x[b:b + 1, :n], mask[b:b + 1, :n], pos[b:b + 1, :n], vis[b:b + 1, :n],
                   span_starts=starts[b:b + 1, :n])
        n_out = one.hidden_states.shape[1]
        assert n_out == n - sum(s[1] - math.ceil(s[1] / 4) for s in spans[b])
        torch.testing.assert_close(out.hidden_states[b, :n_out], one.hidden_states[0], atol=1e-5, rtol=1e-5)
        assert out.attention_mask[b].sum() == n_out


def test_gradient_checkpointing_same_loss_and_grads():
    llm = tiny_llm()
    x, mask, pos, vis, _ = batch([24, 16], [[(2, 16)], [(1, 4)]])
    comp = VisualTokenCompressor(layer=2, stride=4).train()

    def run():
        llm.zero_grad()
        xi = x.clone().requires_grad_()
        out = comp(llm, xi, mask, pos, vis)
        loss = (out.hidden_states * out.attention_mask[..., None]).pow(2).mean()
        loss.backward()
        return loss.detach(), xi.grad, llm.model.layers[0].self_attn.q_proj.weight.grad.clone()

    llm.train()
    plain = run()
    llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=False))
    assert llm.model.layers[0].gradient_checkpointing
    ckpt = run()
    for a, b in zip(plain, ckpt):
        torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


def test_kv_cache_decoding_matches_full_recompute():
    llm = tiny_llm()
    comp = VisualTokenCompressor(layer=2, stride=4, keep_at_inference=True).eval()
    x, mask, pos, vis, starts = batch([26, 15, 10], [[(3, 16)], [(2, 8)], []], left_pad=True, seed=5)
    new = torch.randn(3, 3, H, generator=torch.Generator().manual_seed(9))
    with torch.no_grad():
        pre = comp(llm, x, mask, pos, vis, span_starts=starts, use_cache=True)
        cache = pre.past_key_values
        assert cache.get_seq_length(0) == 26 and cache.get_seq_length(2) == 14  # rows pool to 14, 9, 10
        steps, full_mask = [], mask
        for t in range(3):  # the generation loop's calls: full-history mask, explicit positions
            full_mask = torch.cat([full_mask, torch.ones(3, 1, dtype=torch.long)], 1)
            step_pos = (pos[:, -1] + 1 + t)[:, None]
            steps.append(comp(llm, new[:, t:t + 1], full_mask, step_pos, torch.zeros(3, 1, dtype=torch.bool),
                              past_key_values=cache, use_cache=True).hidden_states)
        whole = comp(llm, torch.cat([x, new], 1), full_mask,
                     torch.cat([pos, pos[:, -1:] + 1 + torch.arange(3)], 1),
                     torch.cat([vis, torch.zeros(3, 3, dtype=torch.bool)], 1),
                     span_starts=torch.cat([starts, torch.zeros(3, 3, dtype=torch.bool)], 1))
    torch.testing.assert_close(torch.cat(steps, 1), whole.hidden_states[:, -3:], atol=1e-5, rtol=1e-5)
    # the cache knows the next position (text positions are the uncompressed ones)
    assert cache.next_position.tolist() == [29.0, 18.0, 13.0]
    # beam bookkeeping reorders the pooled masks with the keys
    cache.batch_repeat_interleave(2)
    cache.reorder_cache(torch.tensor([1, 0, 3, 2, 4, 5]))
    assert cache.pooled_attention_mask.shape[0] == 6
    assert cache.next_position.tolist() == [29.0, 29.0, 18.0, 18.0, 13.0, 13.0]


def test_compression_ratio_formula_and_measured():
    assert round(compression_ratio(32, 2, 8) * 100) == 557
    assert compression_ratio(32, -1, 8) == 8.0 and compression_ratio(32, None, 8) == 1.0
    llm = tiny_llm(layers=8)
    n_img = 32
    x, mask, pos, vis, _ = batch([40], [[(4, n_img)]])
    for k, s in [(2, 8), (4, 2), (-1, 4), (6, 4)]:
        comp = VisualTokenCompressor(layer=k, stride=s).train()
        seen = comp(llm, x, mask, pos, vis).visual_tokens_per_layer
        measured = 8 * n_img / float(seen.sum())
        assert measured == pytest.approx(compression_ratio(8, k, s)) == pytest.approx(comp.compression_ratio(8))
    # eval mode of a staged (not kept) compressor runs uncompressed
    assert VisualTokenCompressor(layer=2, stride=8).eval().active() is None
    assert VisualTokenCompressor(layer=2, stride=8, keep_at_inference=True).eval().active() == (2, 8)
