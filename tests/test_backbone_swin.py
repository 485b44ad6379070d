"""Swin backbone: parity with HF MM-Grounding-DINO's Swin (random weights, converted keys), the mmdet
key/unfold-order converter, shapes at odd sizes, gradients, freezing and checkpointing."""
import re

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from llmvision.models.backbones import SwinBackbone
from llmvision.models.backbones.convert import (
    convert_swin_hf_to_ours,
    convert_swin_mmdet_to_ours,
    unfold_to_ours_norm,
    unfold_to_ours_reduction,
)
from llmvision.models.backbones.swin import PatchMerging, relative_position_index

TINY = dict(embed_dims=16, depths=(2, 2, 2, 2), num_heads=(1, 2, 2, 4), window_size=7, out_indices=(1, 2, 3))


@pytest.fixture(scope='module')
def hf_model():
    """Tiny HF MMGroundingDinoModel with every parameter randomised (seeded)."""
    from transformers import BertConfig, MMGroundingDinoConfig, SwinConfig
    from transformers.models.mm_grounding_dino.modeling_mm_grounding_dino import MMGroundingDinoModel
    torch.manual_seed(0)
    backbone = SwinConfig(embed_dim=16, depths=[2, 2, 2, 2], num_heads=[1, 2, 2, 4], window_size=7,
                          out_features=['stage2', 'stage3', 'stage4'])
    text = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32)
    config = MMGroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=64, encoder_layers=1,
                                   decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10,
                                   encoder_attention_heads=2, decoder_attention_heads=2, num_feature_levels=4)
    model = MMGroundingDinoModel(config).eval()
    with torch.no_grad():
        for param in model.parameters():
            param.normal_(0, 0.2)
    return model


def _hf_full_state_dict(model):
    return {'model.' + k: v for k, v in model.state_dict().items()}


@pytest.mark.parametrize('size', [(100, 76), (64, 64)])
def test_swin_matches_hf(hf_model, size):
    ours = SwinBackbone(**TINY, drop_path_rate=0.2).eval()
    ours.load_state_dict(convert_swin_hf_to_ours(_hf_full_state_dict(hf_model)), strict=True)
    torch.manual_seed(1)
    images = torch.randn(2, 3, *size)
    with torch.no_grad():
        expected = hf_model.backbone.conv_encoder.model(images).feature_maps
        got = ours(images)
    assert len(got) == 3
    for e, g, stride, channels in zip(expected, got, (8, 16, 32), (32, 64, 128)):
        assert g.shape == (2, channels, -(-size[0] // stride), -(-size[1] // stride))
        assert g.shape == e.shape
        assert (g - e).abs().max() < 1e-5


def _to_legacy_hf_names(state_dict):
    """transformers-5 Swin names -> the names found in hub checkpoint files."""
    legacy = {}
    for key, value in state_dict.items():
        key = key.replace('conv_encoder.model.swin.', 'conv_encoder.model.')
        key = key.replace('attention.q_proj', 'attention.self.query').replace('attention.k_proj', 'attention.self.key')
        key = key.replace('attention.v_proj', 'attention.self.value')
        key = key.replace('attention.o_proj', 'attention.output.dense')
        key = key.replace('attention.relative_position_bias.', 'attention.self.')
        key = key.replace('mlp.fc1', 'intermediate.dense').replace('mlp.fc2', 'output.dense')
        legacy[key] = value
    return legacy


def test_hf_converter_accepts_hub_layout_and_rejects_unknown_keys(hf_model):
    full = _hf_full_state_dict(hf_model)
    new = convert_swin_hf_to_ours(full)
    old = convert_swin_hf_to_ours(_to_legacy_hf_names(full))
    assert new.keys() == old.keys()
    assert all(torch.equal(new[k], old[k]) for k in new)
    bad = dict(full)
    bad['model.backbone.conv_encoder.model.swin.encoder.layers.0.blocks.0.attention.gate.weight'] = torch.zeros(1)
    with pytest.raises(KeyError, match='attention.gate.weight'):
        convert_swin_hf_to_ours(bad)
    partial = {k: v for k, v in full.items() if 'layers.1.blocks.0.attention.k_proj.bias' not in k}
    with pytest.raises(KeyError, match='incomplete'):
        convert_swin_hf_to_ours(partial)


def _unfold_patch_merging(x, hw, norm, reduction):
    """mmdet-style PatchMerging: nn.Unfold(2, stride 2) channel order, then norm + reduction."""
    batch, _, channels = x.shape
    x = x.transpose(1, 2).reshape(batch, channels, *hw)
    x = F.pad(x, (0, hw[1] % 2, 0, hw[0] % 2))
    x = nn.Unfold(kernel_size=2, stride=2)(x).transpose(1, 2)
    return reduction(norm(x))


def test_mmdet_patch_merging_order_converts_exactly():
    torch.manual_seed(0)
    channels = 6
    norm, reduction = nn.LayerNorm(4 * channels), nn.Linear(4 * channels, 2 * channels, bias=False)
    with torch.no_grad():
        norm.weight.normal_()
        norm.bias.normal_()
    ours = PatchMerging(channels)
    with torch.no_grad():
        ours.norm.weight.copy_(unfold_to_ours_norm(norm.weight))
        ours.norm.bias.copy_(unfold_to_ours_norm(norm.bias))
        ours.reduction.weight.copy_(unfold_to_ours_reduction(reduction.weight))
    x = torch.randn(2, 5 * 7, channels)
    expected = _unfold_patch_merging(x, (5, 7), norm, reduction)
    got, hw = ours(x, (5, 7))
    assert hw == (3, 4)
    torch.testing.assert_close(got, expected, atol=1e-6, rtol=1e-5)


def _ours_to_mmdet(state_dict):
    """Ours -> original-Swin names -> mmdet layout, following mmdet's own ``swin_converter`` rules."""
    mmdet = {}
    for key, value in state_dict.items():
        key = key.replace('patch_embed.proj.', 'patch_embed.projection.')
        if '.blocks.' in key:
            key = key.replace('attn.', 'attn.w_msa.').replace('mlp.fc1.', 'ffn.layers.0.0.')
            key = key.replace('mlp.fc2.', 'ffn.layers.1.')
        elif 'downsample.reduction' in key:  # mmdet's correct_unfold_reduction_order
            out_c, in_c = value.shape
            value = value.reshape(out_c, 4, in_c // 4)[:, [0, 2, 1, 3], :].transpose(1, 2).reshape(out_c, in_c)
        elif 'downsample.norm' in key:  # mmdet's correct_unfold_norm_order
            value = value.reshape(4, -1)[[0, 2, 1, 3], :].transpose(0, 1).reshape(-1)
        mmdet['backbone.' + key] = value
    for key in [k for k in mmdet if k.endswith('relative_position_bias_table')]:
        mmdet[key.replace('bias_table', 'index')] = torch.zeros(49, 49, dtype=torch.long)
    mmdet['neck.convs.0.conv.weight'] = torch.zeros(1)  # other modules are ignored
    return mmdet


def test_mmdet_converter_roundtrip_and_errors():
    torch.manual_seed(0)
    ours = SwinBackbone(**TINY).eval()
    reference = ours.state_dict()
    converted = convert_swin_mmdet_to_ours(_ours_to_mmdet(reference))
    assert converted.keys() == reference.keys()
    assert all(torch.equal(converted[k], reference[k]) for k in reference)
    assert all(not re.search(r'w_msa|ffn|projection', k) for k in converted)
    with pytest.raises(KeyError, match='backbone.stages.0.blocks.0.attn.w_msa.extra'):
        convert_swin_mmdet_to_ours({'backbone.stages.0.blocks.0.attn.w_msa.extra': torch.zeros(1)})


def test_mmdet_relative_position_index_matches_ours():
    """mmdet builds the index with a flipped double-step sequence; it must equal the original layout."""
    ws = 7
    seq = (torch.arange(0, (2 * ws - 1) * ws, 2 * ws - 1)[:, None] + torch.arange(ws)[None, :]).reshape(1, -1)
    mmdet_index = (seq + seq.T).flip(1)
    assert torch.equal(mmdet_index, relative_position_index(ws))


def test_swin_gradients_freezing_and_checkpointing():
    torch.manual_seed(0)
    model = SwinBackbone(**TINY, drop_path_rate=0.1, with_cp=True, frozen_stages=1)
    model.train()
    images = torch.randn(1, 3, 45, 61, requires_grad=True)
    outs = model(images)
    assert [o.shape[1:] for o in outs] == [(32, 6, 8), (64, 3, 4), (128, 2, 2)]
    sum(o.square().mean() for o in outs).backward()
    assert images.grad is not None and images.grad.abs().sum() > 0
    assert all(not p.requires_grad for p in model.patch_embed.parameters())
    assert all(not p.requires_grad for p in model.stages[0].parameters())
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all(p.grad is not None for n, p in model.named_parameters() if p.requires_grad)
    # checkpointing and drop path do not change the eval-mode result
    model.eval()
    plain = SwinBackbone(**TINY, drop_path_rate=0.1).eval()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        for a, b in zip(model(images), plain(images)):
            torch.testing.assert_close(a, b)
    with pytest.raises(ValueError, match='out_indices'):
        SwinBackbone(**dict(TINY, out_indices=(4,)))
