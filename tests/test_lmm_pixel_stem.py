"""Pixel stem for tiny vision towers: same token grid and width as the ViT patch projection, trainable per-pixel
layers, built through ``vision_model_from_config(pixel_stem=...)``; a non-ViT module is refused."""
import pytest
import torch
from torch import nn
from transformers import CLIPVisionConfig

from llmvision.models.lmm.llava import vision_model_from_config
from llmvision.models.lmm.pixel_stem import PixelStemPatchEmbedding, add_pixel_stem


def _cfg():
    return CLIPVisionConfig(image_size=32, patch_size=8, hidden_size=32, intermediate_size=64,
                            num_hidden_layers=2, num_attention_heads=4)


def test_tower_with_stem_keeps_tokens_and_trains_the_stem():
    plain = vision_model_from_config(_cfg(), seed=0)
    tower = vision_model_from_config(_cfg(), seed=0, pixel_stem=(8, 16))
    stem = tower.embeddings.patch_embedding
    assert isinstance(stem, PixelStemPatchEmbedding) and stem.weight is stem.proj.weight
    assert [m.out_channels for m in stem.pixel_mlp if isinstance(m, nn.Conv2d)] == [8, 16]
    x = torch.randn(2, 3, 32, 32)
    out = tower(pixel_values=x, output_hidden_states=True)
    ref = plain(pixel_values=x, output_hidden_states=True)
    assert out.hidden_states[-2].shape == ref.hidden_states[-2].shape == (2, 1 + 16, 32)
    # the rest of the tower is the same seeded CLIP; only the patch projection differs
    assert torch.equal(tower.encoder.layers[0].mlp.fc1.weight, plain.encoder.layers[0].mlp.fc1.weight)
    out.hidden_states[-2].square().mean().backward()
    assert stem.pixel_mlp[0].weight.grad.abs().sum() > 0
    # per-pixel nonlinearity: the stem's output is not linear in the pixels (a plain patch projection is)
    a, b = torch.randn(1, 3, 32, 32), torch.randn(1, 3, 32, 32)
    with torch.no_grad():
        assert not torch.allclose(stem(a + b), stem(a) + stem(b), atol=1e-4)
        lin = plain.embeddings.patch_embedding
        assert torch.allclose(lin(a + b), lin(a) + lin(b), atol=1e-4)


def test_add_pixel_stem_refuses_a_module_without_patch_embedding():
    with pytest.raises(TypeError, match='patch_embedding'):
        add_pixel_stem(nn.Linear(3, 3))
    with pytest.raises(ValueError, match='channels'):
        PixelStemPatchEmbedding(32, 8, channels=())
