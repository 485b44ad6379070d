"""VLoRAModel: text-only LLM input, zero delta at init, per-sample factors in a mixed batch, text-only samples,
generation (factors once per call, KV cache == full recompute), gradient checkpointing, unused-parameter guard."""
import pytest
import torch

from llmvision.models.llm.tiny import tiny_llama_llm_cfg, tiny_qwen2_llm_cfg
from llmvision.models.lmm import PerceptualWeightsGenerator, VLoRAModel
from llmvision.models.lmm.tiny import tiny_clip_vision_cfg
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LMMDataSample

VOCAB = 90
PROMPTS = [[5, IMAGE_TOKEN_INDEX, 6, 7, 8, 9],        # one image
           [10, 11, IMAGE_TOKEN_INDEX, 12, 13],       # one (different) image
           [14, 15, 16, 17, 18, 19, 20]]              # text only


def build(llm='qwen2', seed=0, randomise_B=True, **kw):
    llm_cfg = (tiny_qwen2_llm_cfg if llm == 'qwen2' else tiny_llama_llm_cfg)(
        VOCAB, hidden_size=64, intermediate_size=96, num_hidden_layers=4, initializer_range=0.2)
    torch.manual_seed(seed)
    model = VLoRAModel(vision_encoder=tiny_clip_vision_cfg(seed=seed), llm=llm_cfg,
                       weight_generator=dict(type=PerceptualWeightsGenerator, dim=32, depth=2, rank=4, alpha=8,
                                             skip=2, num_heads=4),
                       **kw).eval()
    if randomise_B:
        g = torch.Generator().manual_seed(seed + 1)
        with torch.no_grad():
            for p in model.weight_generator.lora_B.values():
                p.copy_(torch.randn(p.shape, generator=g) * 0.5)
    return model


def samples(prompts, labels=True):
    out = []
    for ids in prompts:
        ids = torch.tensor(ids)
        ds = LMMDataSample(metainfo=dict(num_images=int((ids == IMAGE_TOKEN_INDEX).sum())))
        ds.input_ids = ids
        if labels:
            lab = torch.full_like(ids, IGNORE_INDEX)
            lab[-3:] = ids[-3:]
            ds.labels = lab
        out.append(ds)
    return out


def pixels(n, seed=3):
    return torch.randn(n, 3, 28, 28, generator=torch.Generator().manual_seed(seed))


def text_ids(prompt):
    return torch.tensor([t for t in prompt if t != IMAGE_TOKEN_INDEX])


def test_generator_sized_from_models_and_llm_sees_text_only():
    model = build()
    gen = model.weight_generator
    assert gen.layer_ids == (1, 3) and gen.pos_embed.shape == (1, 4, 32)   # 2x2 CLIP patches, CLS dropped
    assert gen.lora_B['k'].shape == (2, 32, 4)                              # GQA: 2 KV heads x 16
    batch = model.prepare_batch(pixels(2), samples(PROMPTS))
    assert batch.inputs_embeds.shape[1] == 7 and not batch.visual_mask.any()
    assert batch.image_counts == [1, 1, 0]
    assert (batch.input_ids != IMAGE_TOKEN_INDEX).all()
    w = batch.extra['perceptual_weights']
    assert w.A['q'].shape == (3, 2, 64, 4) and (w.A['q'][2] == 0).all() and (w.A['q'][0] != 0).any()
    assert sum(p.numel() for p in model.projector.parameters()) == 0


@pytest.mark.parametrize('llm', ['qwen2', 'llama'])
def test_zero_delta_at_init_equals_plain_llm(llm):
    model = build(llm, randomise_B=False)
    with torch.no_grad():
        out = model(pixels(2), samples(PROMPTS), mode='tensor')['logits']
        for i, prompt in enumerate(PROMPTS):
            ids = text_ids(prompt)
            ref = model.llm(input_ids=ids[None]).logits[0]
            torch.testing.assert_close(out[i, :len(ids)], ref, atol=1e-5, rtol=1e-5)


def test_mixed_batch_equals_each_sample_alone():
    model = build()
    pix = pixels(2)
    with torch.no_grad():
        batched = model(pix, samples(PROMPTS), mode='tensor')['logits']
        for i, prompt in enumerate(PROMPTS):
            img = pix[i:i + 1] if IMAGE_TOKEN_INDEX in prompt else None
            alone = model(img, samples([prompt]), mode='tensor')['logits'][0]
            n = len(text_ids(prompt))
            torch.testing.assert_close(batched[i, :n], alone[:n], atol=1e-5, rtol=1e-5)
        plain = model.llm(input_ids=text_ids(PROMPTS[2])[None]).logits[0]
        torch.testing.assert_close(batched[2, :7], plain, atol=1e-5, rtol=1e-5)  # text-only sample: no delta
        ids0 = text_ids(PROMPTS[0])[None]
        assert (batched[0, :5] - model.llm(input_ids=ids0).logits[0]).abs().max() > 1e-2   # images matter


def test_generation_factors_once_and_cache_matches_recompute():
    model = build()
    calls = []
    model.weight_generator.register_forward_hook(lambda *a: calls.append(1))
    data = samples(PROMPTS[:2], labels=False)
    pix = pixels(2)
    with torch.no_grad():
        batch = model.prepare_batch(pix, data, padding_side='left')
        rows = model.generate_ids(batch, max_new_tokens=4, eos_token_ids=[])
        assert len(calls) == 1
        beams = model.generate_ids(batch, max_new_tokens=4, num_beams=3, eos_token_ids=[])
        assert len(calls) == 1 and [len(r) for r in beams] == [4, 4]   # beam rows reuse the factors
        for i, prompt in enumerate(PROMPTS[:2]):     # reference: full forward each step, no cache
            seq = list(prompt)
            for _ in range(4):
                logits = model(pix[i:i + 1], samples([seq], labels=False), mode='tensor')['logits']
                seq.append(int(logits[0, -1].argmax()))
            assert rows[i] == seq[len(prompt):]


def test_gradient_checkpointing_same_loss_and_grads():
    def loss_and_grads(**kw):
        model = build('llama', **kw).train()
        loss = model(pixels(2), samples(PROMPTS), mode='loss')['loss']
        loss.backward()
        return loss.detach(), {n: p.grad for n, p in model.named_parameters() if p.grad is not None}

    loss_ref, grads_ref = loss_and_grads()
    loss_cp, grads_cp = loss_and_grads(gradient_checkpointing=True)
    torch.testing.assert_close(loss_cp, loss_ref)
    assert grads_cp.keys() == grads_ref.keys()
    assert any(k.startswith('weight_generator.gen.q.') for k in grads_ref)
    for k in grads_ref:
        torch.testing.assert_close(grads_cp[k], grads_ref[k], atol=1e-5, rtol=1e-4, msg=k)


def test_multi_image_sample_sums_its_images_factors():
    model = build()
    pix = pixels(3)
    with torch.no_grad():
        w = model.perceptual_weights(pix, [2, 0, 1])
        each = model.weight_generator(model.vision_features(pix))
    for t in 'qkvom':
        torch.testing.assert_close(w.A[t][0], each.A[t][0] + each.A[t][1])
        assert (w.A[t][1] == 0).all()
        torch.testing.assert_close(w.A[t][2], each.A[t][2])


def test_text_only_batch_keeps_generator_in_graph():
    model = build(freeze_llm=True).train()
    loss = model(None, samples([PROMPTS[2]]), mode='loss')['loss']
    loss.backward()
    assert all(p.grad is not None for p in model.weight_generator.parameters())
    assert all(p.grad is None for p in model.llm.parameters())
