"""Channel-mapper neck: parity with HF ``input_proj_vision`` (random weights), mmdet keys, shapes."""
import pytest
import torch

from llmvision.models.backbones import ChannelMapperNeck
from llmvision.models.backbones.convert import convert_neck_hf_to_ours, convert_neck_mmdet_to_ours


def _hf_input_proj(in_channels, d_model, num_levels):
    """HF MMGroundingDinoModel's vision input projection, built with a tiny config."""
    from transformers import BertConfig, MMGroundingDinoConfig, SwinConfig
    from transformers.models.mm_grounding_dino.modeling_mm_grounding_dino import MMGroundingDinoModel
    backbone = SwinConfig(embed_dim=in_channels[0] // 2, depths=[1, 1, 1, 1], num_heads=[1, 1, 1, 1],
                          out_features=['stage2', 'stage3', 'stage4'])
    text = BertConfig(vocab_size=50, hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                      intermediate_size=32)
    config = MMGroundingDinoConfig(backbone_config=backbone, text_config=text, d_model=d_model, encoder_layers=1,
                                   decoder_layers=1, encoder_ffn_dim=32, decoder_ffn_dim=32, num_queries=10,
                                   encoder_attention_heads=2, decoder_attention_heads=2,
                                   num_feature_levels=num_levels)
    return MMGroundingDinoModel(config).eval()


def test_neck_matches_hf_input_proj():
    torch.manual_seed(0)
    in_channels = (16, 32, 64)
    hf = _hf_input_proj(in_channels, d_model=64, num_levels=5)  # two extra levels
    with torch.no_grad():
        for param in hf.input_proj_vision.parameters():
            param.normal_(0, 0.3)
    state = {'model.' + k: v for k, v in hf.state_dict().items() if k.startswith('input_proj_vision.')}
    neck = ChannelMapperNeck(in_channels, out_channels=64, num_extra_levels=2).eval()
    neck.load_state_dict(convert_neck_hf_to_ours(state, num_inputs=3), strict=True)
    feats = [torch.randn(2, c, 13 // 2 ** i + 1, 17 // 2 ** i + 1) for i, c in enumerate(in_channels)]
    with torch.no_grad():
        # HF MMGroundingDinoModel.forward: project each map, first extra level from the last backbone map,
        # later ones from the previous projected map
        expected = [hf.input_proj_vision[i](f) for i, f in enumerate(feats)]
        expected.append(hf.input_proj_vision[3](feats[-1]))
        expected.append(hf.input_proj_vision[4](expected[-1]))
        got = neck(feats)
    assert len(got) == 5
    for e, g in zip(expected, got):
        assert g.shape == e.shape
        assert (g - e).abs().max() < 1e-5
    assert got[3].shape[-2:] == (2, 3) and got[4].shape[-2:] == (1, 2)


def test_neck_mmdet_keys_and_errors():
    neck = ChannelMapperNeck((8, 16, 32), out_channels=32, num_extra_levels=1, num_groups=8)
    mmdet = {'neck.' + k: v.clone() for k, v in neck.state_dict().items()}
    mmdet['backbone.patch_embed.norm.weight'] = torch.zeros(1)
    converted = convert_neck_mmdet_to_ours(mmdet)
    assert converted.keys() == neck.state_dict().keys()
    assert 'convs.0.conv.weight' in converted and 'extra_convs.0.gn.bias' in converted
    with pytest.raises(KeyError, match='neck.convs.0.bn.weight'):
        convert_neck_mmdet_to_ours({'neck.convs.0.bn.weight': torch.zeros(1)})
    with pytest.raises(KeyError, match='input_proj_vision.0.2.weight'):
        convert_neck_hf_to_ours({'model.input_proj_vision.0.2.weight': torch.zeros(1)}, num_inputs=3)
    with pytest.raises(ValueError, match='expects 3 maps'):
        neck([torch.zeros(1, 8, 4, 4)])
