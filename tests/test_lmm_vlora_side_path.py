"""VLoRA generator + side path equivalence: zero delta at init, per-sample side path == merged weights (peft),
GQA shapes, gradients, activation checkpointing."""
import copy

import pytest
import torch
from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

from llmvision.models.lmm.vlora import (
    PerceptualWeightsGenerator,
    attach_side_path,
    mapped_layers,
    perceptual_weights_context,
    target_sizes,
)
from llmvision.models.lmm.vlora.side_path import decoder_layers

VOCAB = 97


def _llm(kind: str, seed: int = 0):
    common = dict(hidden_size=64, intermediate_size=96, num_hidden_layers=4, num_attention_heads=4,
                  num_key_value_heads=2, vocab_size=VOCAB, initializer_range=0.2, tie_word_embeddings=False,
                  max_position_embeddings=128)
    config = Qwen2Config(**common) if kind == 'qwen2' else LlamaConfig(**common, head_dim=16)
    torch.manual_seed(seed)
    return AutoModelForCausalLM.from_config(config).eval()


def _generator(llm, skip=2, rank=4, alpha=8, seed=1, weight_types='qkvom'):
    ins, outs = target_sizes(llm, 0, weight_types)
    torch.manual_seed(seed)
    return PerceptualWeightsGenerator(visual_dim=24, num_positions=9, dim=32, depth=2,
                                      num_llm_layers=llm.config.num_hidden_layers, in_features=ins,
                                      out_features=outs, rank=rank, alpha=alpha, weight_types=weight_types,
                                      skip=skip, num_heads=4)


def _randomise_B(gen, seed=2):
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in gen.lora_B.values():
            p.copy_(torch.randn(p.shape, generator=g) * 0.5)


def test_layer_mapping():
    assert mapped_layers(32, 4) == (3, 7, 11, 15, 19, 23, 27, 31)
    assert mapped_layers(4, 2) == (1, 3)
    with pytest.raises(ValueError, match='num_queries'):
        PerceptualWeightsGenerator(8, 4, 16, 1, 32, dict.fromkeys('qkvom', 8), dict.fromkeys('qkvom', 8),
                                   skip=4, num_queries=4, num_heads=2)


@pytest.mark.parametrize('kind', ['qwen2', 'llama'])
def test_gqa_shapes(kind):
    llm = _llm(kind)
    gen = _generator(llm)
    w = gen(torch.randn(3, 9, 24))
    kv = llm.config.num_key_value_heads * (llm.config.hidden_size // llm.config.num_attention_heads)
    assert w.layer_ids == (1, 3)
    for t in 'qvom':
        assert w.A[t].shape == (3, 2, 64, 4)
    assert w.B['k'].shape == (2, kv, 4) and w.B['v'].shape == (2, kv, 4) and kv == 32
    assert w.B['q'].shape == w.B['o'].shape == w.B['m'].shape == (2, 64, 4)
    assert all((b == 0).all() for b in w.B.values())  # zero-initialised B
    attach_side_path(llm, w.layer_ids, 'qkvom')
    _randomise_B(gen)
    with perceptual_weights_context(gen(torch.randn(3, 9, 24))):
        out = llm(input_ids=torch.randint(0, VOCAB, (3, 7))).logits
    assert out.shape == (3, 7, VOCAB) and torch.isfinite(out).all()


@pytest.mark.parametrize('kind', ['qwen2', 'llama'])
def test_zero_delta_at_init(kind):
    llm = _llm(kind)
    ids = torch.randint(0, VOCAB, (2, 6))
    ref = llm(input_ids=ids).logits
    gen = _generator(llm)
    attach_side_path(llm, gen.layer_ids, 'qkvom')
    with perceptual_weights_context(gen(torch.randn(2, 9, 24))):
        out = llm(input_ids=ids).logits
    assert torch.equal(out, ref)


def _merged_reference(llm, weights, sample: int):
    """``llm`` with sample ``sample``'s ``W + A B^T`` merged into q/k/v/o by peft, and the MLP delta as a dense
    per-sample matrix in parallel with the MLP."""
    from peft import LoraConfig, get_peft_model
    ref = copy.deepcopy(llm)
    rank = weights.A['q'].shape[-1]
    names = [f'model.layers.{layer}.self_attn.{t}_proj' for layer in weights.layer_ids for t in 'qkvo']
    peft_model = get_peft_model(ref, LoraConfig(r=rank, lora_alpha=rank, target_modules=names, lora_dropout=0.0))
    layers = decoder_layers(peft_model.base_model.model)
    for slot, layer in enumerate(weights.layer_ids):
        for t in 'qkvo':
            lora = getattr(layers[layer].self_attn, f'{t}_proj')
            lora.lora_A['default'].weight.data.copy_(weights.A[t][sample, slot].t())
            lora.lora_B['default'].weight.data.copy_(weights.B[t][slot])
    merged = peft_model.merge_and_unload()
    for slot, layer in enumerate(weights.layer_ids):
        dense = weights.A['m'][sample, slot] @ weights.B['m'][slot].t()  # [in, out]
        decoder_layers(merged)[layer].mlp.register_forward_hook(lambda m, a, o, d=dense: o + a[0] @ d)
    return merged


@pytest.mark.parametrize('kind', ['qwen2', 'llama'])
def test_batch_equals_each_sample_merged(kind):
    llm = _llm(kind)
    gen = _generator(llm)
    _randomise_B(gen)
    ids = torch.randint(0, VOCAB, (2, 8))
    with torch.no_grad():
        weights = gen(torch.randn(2, 9, 24))
        attach_side_path(llm, gen.layer_ids, 'qkvom')
        with perceptual_weights_context(weights):
            batched = llm(input_ids=ids).logits
        plain = llm(input_ids=ids).logits  # outside the context: untouched
        for i in range(2):
            ref = _merged_reference(llm, weights, i)  # copied side-path hooks are idle outside the context
            alone = ref(input_ids=ids[i:i + 1]).logits
            torch.testing.assert_close(batched[i:i + 1], alone, atol=2e-4, rtol=2e-4)
            assert (batched[i:i + 1] - plain[i:i + 1]).abs().max() > 1e-2  # the delta matters
    assert (batched[0] - batched[1]).abs().max() > 1e-2  # different images -> different outputs


def test_text_only_sample_gets_no_delta():
    llm = _llm('qwen2')
    gen = _generator(llm)
    _randomise_B(gen)
    ids = torch.randint(0, VOCAB, (2, 6))
    plain = llm(input_ids=ids).logits
    attach_side_path(llm, gen.layer_ids, 'qkvom')
    weights = gen(torch.randn(2, 9, 24)).select(torch.tensor([True, False]))
    with perceptual_weights_context(weights):
        out = llm(input_ids=ids).logits
    assert torch.equal(out[1], plain[1])
    assert (out[0] - plain[0]).abs().max() > 1e-2


def _loss_and_grads(llm, gen, feats, ids):
    gen.zero_grad()
    llm.zero_grad()
    weights = gen(feats)
    for a in weights.A.values():
        a.retain_grad()
    with perceptual_weights_context(weights):
        logits = llm(input_ids=ids).logits
    loss = torch.nn.functional.cross_entropy(logits[:, :-1].reshape(-1, VOCAB), ids[:, 1:].reshape(-1))
    loss.backward()
    grads = {f'gen.{n}': p.grad.clone() for n, p in gen.named_parameters() if p.grad is not None}
    grads.update({f'llm.{n}': p.grad.clone() for n, p in llm.named_parameters() if p.grad is not None})
    grads.update({f'A.{t}': a.grad.clone() for t, a in weights.A.items()})
    return loss.detach(), grads


def test_gradient_reaches_factors_queries_and_projections():
    llm = _llm('qwen2')
    gen = _generator(llm)
    attach_side_path(llm, gen.layer_ids, 'qkvom')
    feats, ids = torch.randn(2, 9, 24), torch.randint(0, VOCAB, (2, 8))
    # at init B = 0: B gets gradient, A (and everything before it) none yet
    _, grads = _loss_and_grads(llm, gen, feats, ids)
    for t in 'qkvom':
        assert grads[f'gen.lora_B.{t}'].abs().sum() > 0
    _randomise_B(gen)
    _, grads = _loss_and_grads(llm, gen, feats, ids)
    for t in 'qkvom':
        assert grads[f'A.{t}'].abs().sum() > 0
        assert grads[f'gen.lora_B.{t}'].abs().sum() > 0
        assert grads[f'gen.gen.{t}.queries'].abs().sum() > 0
        assert grads[f'gen.gen.{t}.weights_head.weight'].abs().sum() > 0
        assert grads[f'gen.gen.{t}.decoders.0.multihead_attn.in_proj_weight'].abs().sum() > 0
    assert grads['gen.visual_proj.weight'].abs().sum() > 0 and grads['gen.pos_embed'].abs().sum() > 0
    assert grads['llm.model.layers.1.self_attn.k_proj.weight'].abs().sum() > 0  # LLM trainable in fine-tune


@pytest.mark.parametrize('reentrant', [False, True])
def test_gradient_checkpointing_same_loss_and_grads(reentrant):
    llm = _llm('llama').train()
    gen = _generator(llm)
    _randomise_B(gen)
    handle = attach_side_path(llm, gen.layer_ids, 'qkvom')
    feats, ids = torch.randn(2, 9, 24), torch.randint(0, VOCAB, (2, 8))
    loss_ref, grads_ref = _loss_and_grads(llm, gen, feats, ids)
    llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=dict(use_reentrant=reentrant))
    handle.wrap_checkpointing()
    assert decoder_layers(llm)[0].gradient_checkpointing
    loss_cp, grads_cp = _loss_and_grads(llm, gen, feats, ids)
    torch.testing.assert_close(loss_cp, loss_ref)
    assert grads_cp.keys() == grads_ref.keys()
    for k in grads_ref:
        torch.testing.assert_close(grads_cp[k], grads_ref[k], atol=1e-5, rtol=1e-4, msg=k)
