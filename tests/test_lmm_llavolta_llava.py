"""LLaVolta inside LLaVAModel (tiny random CLIP + 4-layer Qwen2, 64 visual tokens per image): S = 1 equals the
model without a compressor, pooled token counts per LLM layer and the reported compression ratio, gradients,
and heavy-mode batched generation (greedy and beam, pooled KV cache) equal to each sample alone."""
import pytest
import torch

from llmvision.models.lmm import tiny_llava_cfg
from llmvision.models.lmm.compressor import VisualTokenCompressor
from llmvision.registry import MODELS
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LMMDataSample

VOCAB, LAYERS, NUM_VIS = 120, 4, 64


def build(compressor=None):
    torch.manual_seed(0)
    return MODELS.build(tiny_llava_cfg(VOCAB, num_hidden_layers=LAYERS, compressor=compressor,
                                       vision=dict(image_size=32, patch_size=4, num_hidden_layers=1)))


def data(seed=2, labels=True):
    """An image sample, a two-image sample and a text-only sample (dataset-level batch)."""
    g = torch.Generator().manual_seed(seed)
    ids = [[1, IMAGE_TOKEN_INDEX, 5, 6, 7], [IMAGE_TOKEN_INDEX, 8, IMAGE_TOKEN_INDEX, 9, 10, 11], [12, 13, 14, 15]]
    samples = []
    for i in ids:
        ds = LMMDataSample(metainfo=dict(num_images=i.count(IMAGE_TOKEN_INDEX)))
        ds.input_ids = torch.tensor(i)
        lab = torch.full((len(i),), IGNORE_INDEX)
        if labels:
            lab[-2:] = ds.input_ids[-2:]
        ds.labels = lab
        samples.append(ds)
    images = [torch.randint(0, 256, (k, 3, 32, 32), generator=g, dtype=torch.uint8) for k in (1, 2, 0)]
    return dict(inputs=images, data_samples=samples)


def loss(model, d):
    d = model.data_preprocessor(d, training=True)
    return model(**d, mode='loss')['loss']


def test_stride_one_equals_model_without_compressor():
    d = data()
    ref = loss(build().train(), d)
    same = loss(build(dict(type=VisualTokenCompressor, layer=2, stride=1)).train(), d)
    assert torch.equal(ref, same)
    pooled = build(dict(type=VisualTokenCompressor, layer=1, stride=8)).train()
    out = loss(pooled, d)
    assert not torch.allclose(out, ref)
    out.backward()
    assert pooled.projector.linear_1.weight.grad.abs().sum() > 0


def test_layer_token_counts_and_reported_compression_ratio():
    model = build(dict(type=VisualTokenCompressor, layer=1, stride=8)).train()
    lengths = []
    hooks = [layer.register_forward_pre_hook(
        lambda m, a, kw: lengths.append(a[0].shape[1] if a else kw['hidden_states'].shape[1]), with_kwargs=True)
        for layer in model.llm.model.layers]
    d = data()
    d['data_samples'], d['inputs'] = d['data_samples'][:1], d['inputs'][:1]  # one row: lengths are exact
    loss(model, d)
    for h in hooks:
        h.remove()
    full = 4 + NUM_VIS
    assert lengths == [full] + [full - NUM_VIS + NUM_VIS // 8] * (LAYERS - 1)
    # CR = N*L / ((N-K)*L/S + K*L): measured from the per-layer visual token counts
    measured = LAYERS * NUM_VIS / (NUM_VIS + (LAYERS - 1) * NUM_VIS / 8)
    assert model.compressor.compression_ratio(LAYERS) == pytest.approx(measured)


@pytest.mark.parametrize('num_beams', [1, 2])
def test_heavy_mode_batched_generation_equals_each_alone(num_beams):
    model = build(dict(type=VisualTokenCompressor, layer=1, stride=8, keep_at_inference=True)).eval()
    d = model.data_preprocessor(data(labels=False), training=False)
    samples = d['data_samples']
    gen = dict(max_new_tokens=6, num_beams=num_beams, eos_token_ids=[])
    batch = model.prepare_batch(d['inputs'], samples, padding_side='left')
    rows = model.generate_ids(batch, **gen)
    starts = [0, 1, 3]
    for i, ds in enumerate(samples):
        n_img = int((ds.input_ids == IMAGE_TOKEN_INDEX).sum())
        pix = d['inputs'][starts[i]:starts[i] + n_img]
        one = model.generate_ids(model.prepare_batch(pix if n_img else None, [ds], padding_side='left'), **gen)
        assert one[0] == rows[i]
    # the prefill really ran compressed: the cache of layers >= K holds the pooled prompt
    out = model.run_llm(batch, use_cache=True)
    cache = out.past_key_values
    assert cache.get_seq_length(0) == batch.inputs_embeds.shape[1]
    assert cache.get_seq_length(1) == out.hidden_states.shape[1] < batch.inputs_embeds.shape[1]
