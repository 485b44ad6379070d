"""Multi-scale deformable attention: PyTorch core vs a naive loop, gradcheck, module parity with HF."""
import math
import os

import pytest
import torch

from llmvision.models.ops import (
    MultiScaleDeformableAttention,
    multi_scale_deformable_attn,
    multi_scale_deformable_attn_pytorch,
    resolve_backend,
    triton_available,
)


def _level_layout(shapes):
    spatial_shapes = torch.tensor(shapes, dtype=torch.long)
    sizes = spatial_shapes[:, 0] * spatial_shapes[:, 1]
    level_start_index = torch.cat([sizes.new_zeros(1), sizes.cumsum(0)[:-1]])
    return spatial_shapes, level_start_index, int(sizes.sum())


def _random_inputs(shapes=((5, 6), (3, 4), (2, 1)), batch=2, queries=5, heads=2, head_dim=3, points=2,
                   dtype=torch.float32, seed=0):
    torch.manual_seed(seed)
    spatial_shapes, level_start_index, num_value = _level_layout(shapes)
    levels = len(shapes)
    value = torch.randn(batch, num_value, heads, head_dim, dtype=dtype)
    # locations partly outside [0, 1] to exercise zero padding
    locations = torch.rand(batch, queries, heads, levels, points, 2, dtype=dtype) * 1.4 - 0.2
    weights = torch.rand(batch, queries, heads, levels, points, dtype=dtype)
    return value, spatial_shapes, level_start_index, locations, weights


def _naive_msda(value, spatial_shapes, level_start_index, locations, weights):
    """Loop over every sample; explicit bilinear interpolation with zero padding."""
    batch, _, heads, head_dim = value.shape
    _, queries, _, levels, points, _ = locations.shape
    out = torch.zeros(batch, queries, heads, head_dim, dtype=value.dtype)
    for b in range(batch):
        for q in range(queries):
            for h in range(heads):
                for lvl in range(levels):
                    height, width = spatial_shapes[lvl].tolist()
                    start = int(level_start_index[lvl])
                    for p in range(points):
                        x = float(locations[b, q, h, lvl, p, 0]) * width - 0.5
                        y = float(locations[b, q, h, lvl, p, 1]) * height - 0.5
                        x0, y0 = math.floor(x), math.floor(y)
                        sample = torch.zeros(head_dim, dtype=value.dtype)
                        for yy, wy in ((y0, 1 - (y - y0)), (y0 + 1, y - y0)):
                            for xx, wx in ((x0, 1 - (x - x0)), (x0 + 1, x - x0)):
                                if 0 <= yy < height and 0 <= xx < width:
                                    sample += wy * wx * value[b, start + yy * width + xx, h]
                        out[b, q, h] += weights[b, q, h, lvl, p] * sample
    return out.flatten(2)


def test_pytorch_core_matches_naive_loop():
    inputs = _random_inputs(dtype=torch.float64)
    expected = _naive_msda(*inputs)
    got = multi_scale_deformable_attn(*inputs, backend='pytorch')
    assert got.shape == (2, 5, 2 * 3)
    torch.testing.assert_close(got, expected, atol=1e-12, rtol=1e-10)
    # the dispatcher's 'auto' on CPU is the PyTorch path
    assert resolve_backend('auto', torch.device('cpu')) == 'pytorch'
    torch.testing.assert_close(multi_scale_deformable_attn(*inputs), expected, atol=1e-12, rtol=1e-10)


def test_pytorch_core_gradcheck():
    value, spatial_shapes, level_start_index, locations, weights = _random_inputs(
        shapes=((3, 4), (2, 2)), batch=1, queries=2, heads=2, head_dim=2, points=2, dtype=torch.float64, seed=1)
    # keep points away from integer pixel coordinates where bilinear sampling is not differentiable
    locations = locations.clamp(0.05, 0.95)
    value.requires_grad_()
    locations.requires_grad_()
    weights.requires_grad_()

    def fn(v, loc, w):
        return multi_scale_deformable_attn_pytorch(v, spatial_shapes, level_start_index, loc, w)

    assert torch.autograd.gradcheck(fn, (value, locations, weights), eps=1e-6, atol=1e-5)


def test_input_validation_messages():
    value, spatial_shapes, level_start_index, locations, weights = _random_inputs()
    with pytest.raises(ValueError, match='positions'):
        multi_scale_deformable_attn(value[:, :-1], spatial_shapes, level_start_index, locations, weights)
    with pytest.raises(ValueError, match='level_start_index'):
        multi_scale_deformable_attn(value, spatial_shapes, level_start_index + 1, locations, weights)
    with pytest.raises(ValueError, match='attention_weights'):
        multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights[..., :1])
    with pytest.raises(ValueError, match='backend'):
        multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights, backend='cuda')
    interpreting = os.environ.get('TRITON_INTERPRET', '0') not in ('', '0')
    if triton_available() and not interpreting:
        with pytest.raises(RuntimeError, match='CUDA'):
            multi_scale_deformable_attn(value, spatial_shapes, level_start_index, locations, weights,
                                        backend='triton')


def test_init_matches_radial_grid():
    attn = MultiScaleDeformableAttention(embed_dims=32, num_heads=8, num_levels=3, num_points=4)
    bias = attn.sampling_offsets.bias.view(8, 3, 4, 2)
    torch.testing.assert_close(bias[0, 1, 0], torch.tensor([1.0, 0.0]))  # head 0: angle 0
    torch.testing.assert_close(bias[1, 2, 2], torch.tensor([3.0, 3.0]))  # head 1: 45 deg, point 3
    torch.testing.assert_close(bias[2, 0, 1], torch.tensor([0.0, 2.0]), atol=1e-6, rtol=0)  # 90 deg
    torch.testing.assert_close(bias[5, 0, 3], torch.tensor([-4.0, -4.0]))  # 225 deg
    assert attn.sampling_offsets.weight.abs().sum() == 0
    assert attn.attention_weights.weight.abs().sum() == 0 and attn.attention_weights.bias.abs().sum() == 0
    assert attn.value_proj.bias.abs().sum() == 0 and attn.output_proj.weight.std() > 0


def _hf_module(d_model, heads, levels, points):
    from transformers import MMGroundingDinoConfig
    from transformers.models.mm_grounding_dino.modeling_mm_grounding_dino import (
        MMGroundingDinoMultiscaleDeformableAttention,
    )
    config = MMGroundingDinoConfig(d_model=d_model, num_feature_levels=levels)
    return MMGroundingDinoMultiscaleDeformableAttention(config, num_heads=heads, n_points=points)


@pytest.mark.parametrize('ref_dim', [2, 4])
def test_module_matches_hf(ref_dim):
    torch.manual_seed(0)
    d_model, heads, levels, points, batch, queries = 32, 4, 3, 2, 2, 6
    hf = _hf_module(d_model, heads, levels, points).eval()
    for p in hf.parameters():
        torch.nn.init.normal_(p, std=0.3)
    ours = MultiScaleDeformableAttention(d_model, heads, levels, points, backend='pytorch').eval()
    missing = ours.load_state_dict(hf.state_dict(), strict=True)
    assert not missing.missing_keys and not missing.unexpected_keys

    spatial_shapes, level_start_index, num_value = _level_layout([(6, 5), (3, 3), (2, 2)])
    query = torch.randn(batch, queries, d_model)
    query_pos = torch.randn(batch, queries, d_model)
    value = torch.randn(batch, num_value, d_model)
    padding = torch.zeros(batch, num_value, dtype=torch.bool)
    padding[1, 20:30] = True
    if ref_dim == 2:
        reference = torch.rand(batch, queries, levels, 2)
    else:
        reference = torch.cat([torch.rand(batch, queries, levels, 2), torch.rand(batch, queries, levels, 2) * 0.5],
                              -1)
    with torch.no_grad():
        expected, _ = hf(query, attention_mask=~padding, encoder_hidden_states=value, position_embeddings=query_pos,
                         reference_points=reference, spatial_shapes=spatial_shapes,
                         spatial_shapes_list=[tuple(s) for s in spatial_shapes.tolist()],
                         level_start_index=level_start_index)
        got = ours(query, value, reference, spatial_shapes, level_start_index, key_padding_mask=padding,
                   query_pos=query_pos)
    assert got.shape == (batch, queries, d_model)
    assert (got - expected).abs().max() < 1e-5


def test_module_gradients_reach_every_parameter():
    torch.manual_seed(0)
    spatial_shapes, level_start_index, num_value = _level_layout([(4, 4), (2, 2)])
    attn = MultiScaleDeformableAttention(16, 2, 2, 2, backend='pytorch')
    for p in attn.parameters():  # leave the zero init so that every parameter gets a gradient signal
        torch.nn.init.normal_(p, std=0.2)
    query = torch.randn(2, 3, 16)
    out = attn(query, torch.randn(2, num_value, 16), torch.rand(2, 3, 2, 4) * 0.5 + 0.25, spatial_shapes,
               level_start_index)
    out.square().sum().backward()
    for name, param in attn.named_parameters():
        assert param.grad is not None and param.grad.abs().sum() > 0, name
    with pytest.raises(ValueError, match='reference_points'):
        attn(query, torch.randn(2, num_value, 16), torch.rand(2, 3, 2, 3), spatial_shapes, level_start_index)
    with pytest.raises(ValueError, match='key_padding_mask'):
        attn(query, torch.randn(2, num_value, 16), torch.rand(2, 3, 2, 2), spatial_shapes, level_start_index,
             key_padding_mask=torch.zeros(2, 3, dtype=torch.bool))
