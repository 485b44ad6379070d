"""A released LLMDet checkpoint loads WHOLE into our LLMDet, and ``mm_projector2.bin`` into both projectors.

The released state dict is written here from the tiny LLMDet (``configs/llmdet/llmdet_tiny_synthetic.py`` with
region cross-attention on) by hand, with the released module names and shapes: mmdet Swin / Grounding-DINO keys,
``connector.vision_projector.0.{0,2}`` + ``connector.pos_proj``, ``region_connector``, ``image_seperate.weight``
``[1, H]``, ``ref_point_head.layers.{0,1}``, the LLaVA-Qwen LLM under ``lmm.`` in fp16 with LoRA factors
``<proj>.lora_A/B.weight`` beside the frozen ``<proj>.weight``, and the cross-attention blocks. Every parameter
of a differently seeded model must equal the source after loading, with nothing left over.
"""
import re

import pytest
import torch

from helpers import build_captioner
from llmvision.checkpoint import convert_llmdet, load_llmdet_checkpoint, load_llmdet_projector
from llmvision.engine import load_config
from llmvision.registry import MODELS

CONFIG = 'configs/llmdet/llmdet_tiny_synthetic.py'
NORMS = {'norm1': 0, 'norm2': 1, 'norm3': 2, 'norm4': 3}
SWIN = (('attn.relative_position_bias_table', 'attn.w_msa.relative_position_bias_table'),
        ('attn.qkv.', 'attn.w_msa.qkv.'), ('attn.proj.', 'attn.w_msa.proj.'), ('mlp.fc1.', 'ffn.layers.0.0.'),
        ('mlp.fc2.', 'ffn.layers.1.'))


def ours_to_unfold(t):
    """Our patch-merging input channels (4 neighbour blocks of C) -> mmdet's ``nn.Unfold`` order (C x 4)."""
    lead = t.shape[:-1]
    return t.reshape(*lead, 4, -1)[..., [0, 2, 1, 3], :].transpose(-1, -2).reshape(*lead, -1)


def build(data, seed, **options):
    cfg = load_config(CONFIG, {'model.text_encoder.tokenizer': str(data.bert_tokenizer),
                               'model.captioner.tokenizer': str(data.llm_tokenizer),
                               'model.captioner.region_cross_attn': dict(every=2, embed_dims=64, num_heads=4,
                                                                          num_points=2), **options})
    torch.manual_seed(seed)
    model = MODELS.build(cfg.model)
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():          # zero-init parts (up_proj, LoRA B, offsets) get values too
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


def released_detector(sd):
    """Our detector keys -> mmdet (LLMDet) names."""
    out = {}
    for k, v in sd.items():
        if k.startswith('captioner.'):
            continue
        if k.startswith('backbone.'):
            if k.endswith('relative_position_index'):
                continue
            if (m := re.match(r'backbone\.stages\.(\d+)\.downsample\.(norm|reduction)\.(weight|bias)$', k)):
                v = ours_to_unfold(v)
            k = k.replace('backbone.patch_embed.proj.', 'backbone.patch_embed.projection.')
            for ours, theirs in SWIN:
                k = k.replace(f'.{ours}', f'.{theirs}')
            out[k] = v
            continue
        if k.startswith('text_encoder.bert.'):
            out['language_model.language_backbone.body.model.' + k[len('text_encoder.bert.'):]] = v
            continue
        if (m := re.match(r'cls_branches\.(\d+)\.bias$', k)):
            out[f'bbox_head.cls_branches.{m.group(1)}.bias'] = v
            continue
        if (m := re.match(r'reg_branches\.(\d+)\.layers\.(\d)\.(\w+)$', k)):
            out[f'bbox_head.reg_branches.{m.group(1)}.{int(m.group(2)) * 2}.{m.group(3)}'] = v
            continue
        m = re.match(r'((?:encoder\.text_layers|decoder\.layers)\.\d+\.(?:self_attn|cross_attn_text))'
                     r'\.(q|k|v|out)_proj\.(weight|bias)$', k)
        if m:
            if m.group(2) == 'out':
                out[f'{m.group(1)}.attn.out_proj.{m.group(3)}'] = v
            elif m.group(2) == 'q':
                out[f'{m.group(1)}.attn.in_proj_{m.group(3)}'] = torch.cat(
                    [sd[k.replace('.q_proj.', f'.{x}_proj.')] for x in 'qkv'], 0)
            continue
        k = re.sub(r'\.ffn\.fc1\.', '.ffn.layers.0.0.', k)
        k = re.sub(r'\.ffn\.fc2\.', '.ffn.layers.1.', k)
        if re.match(r'(encoder\.(text_)?layers|decoder\.layers)\.', k):
            k = re.sub(r'\.(norm[1-4])\.', lambda mm: f'.norms.{NORMS[mm.group(1)]}.', k)
        out[k] = v
    return out


def released_captioner(sd, layer_ids, layout):
    """Our captioner keys -> the released names; ``layout`` places the cross-attention blocks."""
    out = {'lmm.model.image_newline': torch.randn(64).half()}
    llm = 'captioner.llm.base_model.model.'
    for k, v in sd.items():
        if not k.startswith('captioner.'):
            continue
        k = k[len('captioner.'):]
        if k.startswith('llm.'):
            rest = k[len(llm) - len('captioner.'):]
            rest = rest.replace('.base_layer.', '.').replace('.lora_A.default.', '.lora_A.') \
                .replace('.lora_B.default.', '.lora_B.')
            out['lmm.' + rest] = v.half()              # the released LLaVA-Qwen is .half()
            continue
        if (m := re.match(r'(image_tokenizer\.projector|region_projector)\.(proj\.([02])|pos_proj)\.(\w+)$', k)):
            name = 'connector' if m.group(1).startswith('image') else 'region_connector'
            mid = f'vision_projector.0.{m.group(3)}' if m.group(3) else 'pos_proj'
            out[f'{name}.{mid}.{m.group(4)}'] = v
        elif k == 'image_tokenizer.separators':
            if v.numel():            # the only-p5 variant has no separator
                out['image_seperate.weight'] = v.reshape(1, -1)
        elif (m := re.match(r'region_cross_attn\.ref_point_head\.([02])\.(\w+)$', k)):
            out[f'ref_point_head.layers.{int(m.group(1)) // 2}.{m.group(2)}'] = v
        elif (m := re.match(r'region_cross_attn\.blocks\.(\d+)\.(.+)$', k)):
            block, leaf = int(m.group(1)), m.group(2)
            if layout == 'in_layer':
                leaf = leaf.replace('attn.', 'cross_attn.').replace('norm.', 'post_norm.')
                out[f'lmm.model.layers.{layer_ids[block]}.region_xattn.{leaf}'] = v
            else:
                leaf = leaf.replace('attn.', 'msda.')
                out[f'lmm.model.cross_attn_layers.{block}.{leaf}'] = v
        else:
            raise AssertionError(f'test: no released name for {k}')
    return out


@pytest.fixture(scope='module')
def source(synthetic_data):
    model = build(synthetic_data, seed=0)
    return model, model.state_dict()


@pytest.mark.parametrize('layout', ['in_layer', 'beside_layers'])
def test_released_llmdet_checkpoint_loads_whole(synthetic_data, source, layout):
    src_model, sd = source
    layer_ids = src_model.captioner.region_cross_attn.layer_ids
    assert layer_ids == [0, 2]
    released = {**released_detector(sd), **released_captioner(sd, layer_ids, layout)}
    assert any(k.startswith('lmm.model.layers.1.self_attn.q_proj.lora_A') for k in released)
    assert {'image_seperate.weight', 'connector.pos_proj.weight', 'region_connector.vision_projector.0.2.weight',
            'ref_point_head.layers.1.weight', 'lmm.lm_head.weight'} <= set(released)
    target = build(synthetic_data, seed=1)
    report = load_llmdet_checkpoint(target, released)
    assert report.ok, report.summary()
    assert report.side == {} and report.unconverted == [] and report.missing == [] and report.unexpected == []
    assert list(report.ignored) == ['lmm.model.image_newline']
    loaded = target.state_dict()
    assert sorted(loaded) == sorted(sd)
    for k, v in sd.items():
        expected = v.half().float() if k.startswith('captioner.llm.') else v
        assert torch.equal(loaded[k].float(), expected.float()), k
    for name, p in target.named_parameters():     # parameters, too (not only the state dict's copies)
        assert torch.equal(p.detach().float(), loaded[name].float()), name


def test_leftovers_are_named(synthetic_data, source):
    src_model, sd = source
    released = {**released_detector(sd), **released_captioner(sd, [0, 2], 'beside_layers')}
    released['lmm.model.mystery.weight'] = torch.zeros(3)
    released['lmm.model.layers.1.region_xattn.down_proj.weight'] = torch.zeros(3)   # layer 1 has no block
    released['connector.pos_proj.weight'] = torch.zeros(5, 5)
    del released['region_connector.pos_proj.bias']
    converted, report = convert_llmdet(released, src_model)
    assert sorted(report.unconverted) == ['lmm.model.layers.1.region_xattn.down_proj.weight',
                                          'lmm.model.mystery.weight']
    target = build(synthetic_data, seed=1)
    with pytest.raises(KeyError, match='lmm.model.mystery.weight'):
        load_llmdet_checkpoint(target, released, strict=True)
    report = load_llmdet_checkpoint(target, released)
    assert report.missing == ['captioner.region_projector.pos_proj.bias']
    assert report.shape_mismatch == [('captioner.image_tokenizer.projector.pos_proj.weight', (5, 5), (64, 512))]


def _projector_file(hidden, layout, in_dims=256):
    g = torch.Generator().manual_seed(3)
    w = {'0.weight': torch.randn(hidden, in_dims, generator=g), '0.bias': torch.randn(hidden, generator=g),
         '2.weight': torch.randn(hidden, hidden, generator=g), '2.bias': torch.randn(hidden, generator=g)}
    if layout == 'llmdet':
        w = {f'vision_projector.0.{k}': v for k, v in w.items()}
        w.update({'pos_proj.weight': torch.randn(hidden, 512, generator=g), 'pos_proj.bias': torch.zeros(hidden)})
    sd = {f'model.mm_projector.{k}': v for k, v in w.items()}
    sd['model.image_newline'] = torch.zeros(hidden)
    return sd


@pytest.mark.parametrize('layout', ['llmdet', 'llava'])
def test_mm_projector_loads_into_both_connectors(tokenizer, layout):
    cap = build_captioner(tokenizer)
    before = cap.region_projector.pos_proj.weight.detach().clone()
    sd = _projector_file(64, layout)
    report = load_llmdet_projector(cap, sd)
    assert report.unconverted == [] and report.unexpected == [] and report.shape_mismatch == []
    assert list(report.ignored) == ['model.image_newline']
    for projector in (cap.image_tokenizer.projector, cap.region_projector):
        torch.testing.assert_close(projector.proj[0].weight, sd['model.mm_projector.' + (
            'vision_projector.0.0.weight' if layout == 'llmdet' else '0.weight')], rtol=0, atol=0)
        torch.testing.assert_close(projector.proj[2].bias, sd['model.mm_projector.' + (
            'vision_projector.0.2.bias' if layout == 'llmdet' else '2.bias')], rtol=0, atol=0)
    if layout == 'llmdet':
        assert report.missing == []
        torch.testing.assert_close(cap.region_projector.pos_proj.weight, sd['model.mm_projector.pos_proj.weight'])
    else:       # a plain LLaVA mlp2x_gelu file has no position projection: named, left at init
        assert report.missing == ['image_tokenizer.projector.pos_proj.weight',
                                  'image_tokenizer.projector.pos_proj.bias',
                                  'region_projector.pos_proj.weight', 'region_projector.pos_proj.bias']
        assert torch.equal(cap.region_projector.pos_proj.weight, before)


def test_mm_projector_from_the_captioner_config(tokenizer, tmp_path):
    path = tmp_path / 'mm_projector2.bin'
    sd = _projector_file(64, 'llmdet')
    torch.save(sd, path)
    cap = build_captioner(tokenizer, projector_checkpoint=str(path))
    for projector in (cap.image_tokenizer.projector, cap.region_projector):
        assert torch.equal(projector.proj[0].weight, sd['model.mm_projector.vision_projector.0.0.weight'])
        assert torch.equal(projector.pos_proj.weight, sd['model.mm_projector.pos_proj.weight'])
    assert cap.image_tokenizer.projector.proj[0].weight.data_ptr() != cap.region_projector.proj[0].weight.data_ptr()
    # the stock LLaVA-OneVision projector maps 1152-d SigLIP features: a clear error, not a silent partial load
    torch.save(_projector_file(64, 'llava', in_dims=1152), path)
    with pytest.raises(ValueError, match='1152-d SigLIP'):
        build_captioner(tokenizer, projector_checkpoint=str(path))
    report = load_llmdet_projector(cap, _projector_file(64, 'llava', in_dims=1152))
    assert ('region_projector.proj.0.weight', (64, 1152), (64, 256)) in report.shape_mismatch


def test_only_p5_variant_has_no_separator(synthetic_data):
    """``use_p4_input=False``: one image level, no ``image_seperate`` in the checkpoint, nothing missing."""
    p5 = {'model.captioner.image_token_levels': (2,), 'model.captioner.image_token_sizes': (5,)}
    src = build(synthetic_data, seed=0, **p5)
    sd = src.state_dict()
    assert sd['captioner.image_tokenizer.separators'].numel() == 0
    released = {**released_detector(sd), **released_captioner(sd, [0, 2], 'in_layer')}
    assert 'image_seperate.weight' not in released
    target = build(synthetic_data, seed=1, **p5)
    report = load_llmdet_checkpoint(target, released, strict=True)
    assert report.ok and report.missing == []
    assert torch.equal(target.captioner.region_projector.proj[0].weight, sd['captioner.region_projector.proj.0.weight'])


def _stage1_checkpoint(tokenizer, path):
    """What the stage-1 run's CheckpointHook writes (mmengine: ``meta``, ``state_dict`` with our LLMDet key names,
    ``message_hub``, ``optimizer``) after the image projector trained a step; returns that projector."""
    from mmengine.logging import MessageHub
    from mmengine.runner.checkpoint import save_checkpoint
    stage1 = build_captioner(tokenizer, seed=5)
    projector = stage1.image_tokenizer.projector
    optim = torch.optim.AdamW(projector.parameters(), lr=0.1)
    sum(p.sum() for p in projector.parameters()).backward()
    optim.step()
    hub = MessageHub.get_instance('test_stage1_checkpoint')
    hub.update_scalar('train/loss', 1.5)
    state = {'captioner.' + k: v for k, v in stage1.state_dict().items()}
    state['backbone.patch_embed.proj.weight'] = torch.zeros(4, 3, 2, 2)       # the frozen detector, too
    save_checkpoint({'meta': {'iter': 10, 'seed': 624982218, 'experiment_name': 'llmdet_swin_t_stage1'},
                     'state_dict': state, 'message_hub': hub.state_dict(), 'optimizer': optim.state_dict()},
                    str(path))
    return stage1


def test_stage1_checkpoint_is_a_projector_checkpoint(tokenizer, tmp_path):
    """Stage 2's ``projector_checkpoint`` / ``load_llmdet_projector`` take the stage-1 run's own checkpoint: its
    image projector (the one stage 1 trains) goes into both projectors; its untrained region projector does not."""
    path = tmp_path / 'iter_10.pth'
    stage1 = _stage1_checkpoint(tokenizer, path)
    trained = stage1.image_tokenizer.projector.state_dict()
    assert not torch.equal(trained['proj.0.weight'], stage1.region_projector.proj[0].weight)
    cap = build_captioner(tokenizer, seed=2, projector_checkpoint=str(path))
    for projector in (cap.image_tokenizer.projector, cap.region_projector):
        for k, v in projector.state_dict().items():
            assert torch.equal(v, trained[k]), k

    target = build_captioner(tokenizer, seed=3)
    for checkpoint in (str(path), torch.load(path, map_location='cpu')):      # a path or the loaded dict
        report = load_llmdet_projector(target, checkpoint, strict=True)
        assert report.unconverted == [] and report.missing == [] and report.shape_mismatch == []
        assert {'captioner.region_projector.proj.0.weight', 'backbone.patch_embed.proj.weight'} <= set(report.ignored)
        for projector in (target.image_tokenizer.projector, target.region_projector):
            assert torch.equal(projector.pos_proj.weight, trained['pos_proj.weight'])
    two = {'captioner.image_tokenizer.projector.proj.0.weight': torch.zeros(1),
           'image_tokenizer.projector.proj.0.weight': torch.zeros(1)}
    with pytest.raises(ValueError, match='several image projectors'):
        load_llmdet_projector(target, two)
    with pytest.raises(KeyError, match='no projector keys'):
        load_llmdet_projector(target, {'backbone.patch_embed.proj.weight': torch.zeros(1)})
