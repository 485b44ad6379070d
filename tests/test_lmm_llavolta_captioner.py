"""LLaVolta's compressor on the LLMDet captioner's image tokens (``LLMCaptioner(compressor=...)``): S = 1 gives the
uncompressed image caption loss, pooling shrinks what LLM layers >= K see (each grid and the separator pooled on
their own) and gradients still reach the image projector; region captions are never compressed."""
import pytest
import torch

from llmvision.models.captioners import tiny_captioner_cfg
from llmvision.models.lmm.compressor import VisualTokenCompressor
from llmvision.registry import MODELS


@pytest.fixture(scope='module')
def tokenizer(synthetic_data):
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))


def build(tokenizer, compressor=None):
    torch.manual_seed(0)
    return MODELS.build(tiny_captioner_cfg(tokenizer, image_token_sizes=(4, 6), compressor=compressor))


def inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    memory = [torch.randn(2, 256, s, s, generator=g) for s in (16, 8, 4, 2)]
    queries = [torch.randn(k, 256, generator=g) for k in (2, 1)]
    boxes = [torch.rand(k, 4, generator=g) * 0.5 + 0.2 for k in (2, 1)]
    phrases = [['red circle', 'blue square'], ['green triangle']]
    captions = ['a red circle and a blue square on a street.', 'one green triangle.']
    return memory, queries, boxes, captions, phrases


def test_stride_one_equals_uncompressed_and_pooling_shrinks_layers(tokenizer):
    ref = build(tokenizer).train().loss(*inputs())
    same = build(tokenizer, dict(type=VisualTokenCompressor, layer=1, stride=1)).train().loss(*inputs())
    assert torch.equal(ref['loss_image_caption'], same['loss_image_caption'])
    assert torch.equal(ref['loss_region_caption'], same['loss_region_caption'])

    cap = build(tokenizer, dict(type=VisualTokenCompressor, layer=1, stride=4)).train()
    lengths = []
    layers = cap.causal_lm.get_decoder().layers
    hooks = [m.register_forward_pre_hook(lambda m, a, kw: lengths.append(a[0].shape[1] if a else
                                                                          kw['hidden_states'].shape[1]),
                                         with_kwargs=True) for m in layers]
    out = cap.loss(*inputs())
    for h in hooks:
        h.remove()
    n = len(layers)
    image_pass = lengths[:n]  # the image caption pass runs first, then the region pass
    pooled = 16 + 1 + 36 - (4 + 1 + 9)  # 4x4 grid -> 4, separator kept, 6x6 grid -> ceil(36/4) = 9
    assert image_pass[1:] == [image_pass[0] - pooled] * (n - 1)
    assert lengths[n:] == [lengths[n]] * n  # region captions: one token, no pooling
    assert not torch.allclose(out['loss_image_caption'], ref['loss_image_caption'])
    (out['loss_image_caption'] + out['loss_region_caption']).backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in cap.image_tokenizer.projector.parameters())
