"""LLaVA checkpoints -> ours: transformers ``llava-hf`` folders (both key layouts, sharded) and the original LLaVA
pieces (LLM folder + ``mm_projector.bin`` + CLIP folder), through the converters, the loader and
``tools/convert_checkpoint.py``.

The source checkpoints are written by transformers itself from a tiny random ``LlavaForConditionalGeneration``
(CLIP vision + Qwen2 text); every converted tensor must land on the same weight of ours, and unplaced keys
are listed (the tool exits 1).
"""
import importlib.util
import json
import os

import pytest
import torch
from torch import nn

from llmvision.checkpoint.llava_hf import convert_llava_hf
from llmvision.checkpoint.llava_load import (
    convert_llava_state_dict,
    detect_llava_format,
    load_llava_checkpoint,
    read_checkpoint,
)
from llmvision.checkpoint.llava_original import convert_llava_original

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def tiny_hf_llava(tie: bool = False, seed: int = 0):
    """A random transformers LLaVA: 2-layer CLIP (28 px, patch 14) + 2-layer Qwen2 (vocab 100, image token 99)."""
    from transformers import CLIPVisionConfig, LlavaConfig, LlavaForConditionalGeneration, Qwen2Config
    vision = CLIPVisionConfig(hidden_size=32, intermediate_size=64, num_hidden_layers=2, num_attention_heads=4,
                              image_size=28, patch_size=14, projection_dim=16)
    text = Qwen2Config(hidden_size=48, intermediate_size=96, num_hidden_layers=2, num_attention_heads=4,
                       num_key_value_heads=2, vocab_size=100, tie_word_embeddings=tie)
    cfg = LlavaConfig(vision_config=vision, text_config=text, image_token_index=99, vision_feature_layer=-2,
                      vision_feature_select_strategy='default', tie_word_embeddings=tie)
    torch.manual_seed(seed)
    return LlavaForConditionalGeneration(cfg).eval()


class StandIn(nn.Module):
    """Our LLaVAModel's weight layout (``vision_encoder`` / ``projector.linear_{1,2}`` / ``llm``), built empty."""

    def __init__(self, hf):
        super().__init__()
        from transformers import AutoModelForCausalLM, CLIPVisionModel
        from transformers.models.llava.modeling_llava import LlavaMultiModalProjector
        self.vision_encoder = CLIPVisionModel(hf.config.vision_config)
        self.projector = LlavaMultiModalProjector(hf.config)
        self.llm = AutoModelForCausalLM.from_config(hf.config.text_config)
        nn.init.zeros_(self.projector.linear_1.weight)


def hf_reference(hf) -> dict:
    """Our key -> the HF tensor it must receive."""
    m = hf.model
    ref = {'vision_encoder.' + k: v for k, v in m.vision_tower.state_dict().items()}
    ref.update({'projector.' + k: v for k, v in m.multi_modal_projector.state_dict().items()})
    ref.update({'llm.model.' + k: v for k, v in m.language_model.state_dict().items()})
    ref['llm.lm_head.weight'] = hf.lm_head.weight
    return ref


def assert_same_weights(ours: nn.Module, hf):
    own = ours.state_dict()
    for key, value in hf_reference(hf).items():
        assert torch.equal(own[key], value), key


@pytest.fixture(scope='module')
def hf():
    return tiny_hf_llava()


def test_in_memory_layout_converts_every_key(hf):
    converted, report = convert_llava_hf(hf.state_dict())
    assert report.unconverted == [] and report.ok
    assert set(converted) == set(StandIn(hf).state_dict())
    assert detect_llava_format(hf.state_dict()) == 'llava-hf'


def test_saved_folder_loads(hf, tmp_path):
    hf.save_pretrained(tmp_path / 'llava')
    saved = read_checkpoint(str(tmp_path / 'llava'))
    assert any(k.startswith('language_model.model.') for k in saved)  # transformers writes the old layout
    ours = StandIn(hf)
    report = load_llava_checkpoint(ours, str(tmp_path / 'llava'), strict=True)
    assert report.ok
    assert_same_weights(ours, hf)


def test_vision_model_level_and_shards(hf, tmp_path):
    """Old checkpoints keep ``vision_tower.vision_model.*``; big ones are sharded with an index json."""
    hf.save_pretrained(tmp_path / 'sharded', max_shard_size='20KB')
    index = json.loads((tmp_path / 'sharded' / 'model.safetensors.index.json').read_text())
    assert len(set(index['weight_map'].values())) > 1
    sd = read_checkpoint(str(tmp_path / 'sharded'))
    old = {k.replace('vision_tower.', 'vision_tower.vision_model.', 1): v for k, v in sd.items()}
    ours = StandIn(hf)
    converted, report = convert_llava_state_dict(old, 'auto')
    assert report.ok
    ours.load_state_dict(converted, strict=True)
    assert_same_weights(ours, hf)


def test_tied_embeddings_without_lm_head(tmp_path):
    hf = tiny_hf_llava(tie=True)
    sd = {k: v for k, v in hf.state_dict().items() if k != 'lm_head.weight'}
    torch.save(sd, tmp_path / 'tied.bin')
    ours = StandIn(hf)
    assert ours.llm.lm_head.weight is ours.llm.model.embed_tokens.weight
    report = load_llava_checkpoint(ours, str(tmp_path / 'tied.bin'), strict=True)
    assert report.missing == []
    assert_same_weights(ours, hf)


def original_pieces(hf, tmp_path):
    """The original LLaVA release of ``hf``: LLM folder, mm_projector.bin, a full CLIPModel folder."""
    from transformers import CLIPConfig, CLIPModel
    llm_dir, clip_dir = tmp_path / 'vicuna', tmp_path / 'clip'
    llm = StandIn(hf).llm
    llm.load_state_dict({'model.' + k: v for k, v in hf.model.language_model.state_dict().items()}
                        | {'lm_head.weight': hf.lm_head.weight})
    llm.save_pretrained(llm_dir)
    proj = hf.model.multi_modal_projector
    torch.save({'model.mm_projector.0.weight': proj.linear_1.weight, 'model.mm_projector.0.bias': proj.linear_1.bias,
                'model.mm_projector.2.weight': proj.linear_2.weight, 'model.mm_projector.2.bias': proj.linear_2.bias},
               tmp_path / 'mm_projector.bin')
    clip = CLIPModel(CLIPConfig(vision_config=hf.config.vision_config.to_dict(),
                                text_config=dict(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                                 num_attention_heads=2, vocab_size=50), projection_dim=16))
    clip_sd = {'vision_model.' + k: v for k, v in hf.model.vision_tower.state_dict().items()}
    clip_sd.update({k: v for k, v in clip.state_dict().items() if not k.startswith('vision_model.')})
    os.makedirs(clip_dir)
    torch.save(clip_sd, clip_dir / 'pytorch_model.bin')
    return llm_dir, tmp_path / 'mm_projector.bin', clip_dir


def test_original_layout_loads(hf, tmp_path):
    llm_dir, projector, clip_dir = original_pieces(hf, tmp_path)
    ours = StandIn(hf)
    report = load_llava_checkpoint(ours, str(llm_dir), 'llava', mm_projector=str(projector),
                                   vision_tower=str(clip_dir), strict=True)
    assert report.ok
    assert any(k.startswith('text_model.') for k in report.side) and 'logit_scale' in report.side
    assert_same_weights(ours, hf)


def test_original_finetuned_folder_and_linear_projector():
    """A fine-tuned LLaVA folder carries the projector (and maybe the tower) next to the LLM."""
    w = torch.zeros(3, 2)
    sd = {'model.layers.0.mlp.up_proj.weight': w, 'lm_head.weight': w, 'model.mm_projector.weight': w,
          'model.mm_projector.bias': w[0], 'model.layers.0.self_attn.rotary_emb.inv_freq': w[0],
          'model.vision_tower.vision_tower.vision_model.post_layernorm.weight': w, 'model.image_newline': w[0]}
    assert detect_llava_format(sd) == 'llava'
    out, report = convert_llava_original(sd)
    assert set(out) == {'llm.model.layers.0.mlp.up_proj.weight', 'llm.lm_head.weight', 'projector.linear_1.weight',
                        'projector.linear_1.bias', 'vision_encoder.post_layernorm.weight'}
    assert report.unconverted == ['model.image_newline']
    assert list(report.side) == ['model.layers.0.self_attn.rotary_emb.inv_freq']


def load_tool():
    path = os.path.join(ROOT, 'tools/convert_checkpoint.py')
    spec = importlib.util.spec_from_file_location('convert_checkpoint', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_tool_llava_hf_and_original(hf, tmp_path, capsys):
    tool = load_tool()
    hf.save_pretrained(tmp_path / 'llava')
    dst = tmp_path / 'ours_hf.pth'
    assert tool.main([str(tmp_path / 'llava'), str(dst), '--from', 'auto']) == 0
    ckpt = torch.load(dst, weights_only=True)
    assert ckpt['meta']['format'] == 'llava-hf'
    ours = StandIn(hf)
    assert load_llava_checkpoint(ours, str(dst), strict=True).ok
    assert_same_weights(ours, hf)

    llm_dir, projector, clip_dir = original_pieces(hf, tmp_path)
    dst2 = tmp_path / 'ours_orig.pth'
    assert tool.main([str(llm_dir), str(dst2), '--from', 'llava', '--mm-projector', str(projector),
                      '--vision-tower', str(clip_dir), '--side', str(tmp_path / 'side.pth')]) == 0
    assert 'set aside saved' in capsys.readouterr().out
    ours = StandIn(hf)
    assert load_llava_checkpoint(ours, str(dst2), strict=True).ok
    assert_same_weights(ours, hf)


def test_tool_lists_unplaced_keys_and_exits_1(hf, tmp_path, capsys):
    tool = load_tool()
    sd = dict(hf.state_dict())
    sd['model.image_newline'] = torch.zeros(48)
    torch.save(sd, tmp_path / 'next.bin')
    dst = tmp_path / 'out.pth'
    assert tool.main([str(tmp_path / 'next.bin'), str(dst), '--from', 'llava-hf']) == 1
    assert 'model.image_newline' in capsys.readouterr().err and not dst.exists()
    assert tool.main([str(tmp_path / 'next.bin'), str(dst), '--from', 'llava-hf', '--allow-unconverted']) == 0
    assert dst.exists()
    with pytest.raises(KeyError, match='image_newline'):
        load_llava_checkpoint(StandIn(hf), str(tmp_path / 'next.bin'), strict=True)


def test_converted_llava_hf_folder_gives_transformers_logits(hf, tmp_path):
    """The saved transformers folder, loaded into our LLaVAModel, reproduces transformers' logits."""
    from transformers import AutoModelForCausalLM, CLIPVisionModel

    from llmvision.models.lmm import LLaVAModel
    from llmvision.structures.lmm_sample import IMAGE_TOKEN_INDEX, LMMDataSample
    hf.save_pretrained(tmp_path / 'llava')
    ours = LLaVAModel(vision_encoder=CLIPVisionModel(hf.config.vision_config),
                      llm=AutoModelForCausalLM.from_config(hf.config.text_config), projector='mlp2x_gelu')
    assert load_llava_checkpoint(ours, str(tmp_path / 'llava'), strict=True).ok
    ours.eval()
    torch.manual_seed(1)
    pixels = torch.randn(1, 3, 28, 28)
    text = torch.randint(0, 98, (9,))
    n_vis = (28 // 14) ** 2
    sample = LMMDataSample(input_ids=torch.cat([text[:3], torch.tensor([IMAGE_TOKEN_INDEX]), text[3:]]))
    peer_ids = torch.cat([text[:3], torch.full((n_vis,), hf.config.image_token_index), text[3:]])[None]
    with torch.no_grad():
        ref = hf(input_ids=peer_ids, pixel_values=pixels, attention_mask=torch.ones_like(peer_ids)).logits
        got = ours(pixels, [sample], mode='tensor')['logits']
    assert got.shape == ref.shape
    assert (got - ref).abs().max().item() < 1e-4


def test_llava_hf_vocabulary_larger_than_the_llm_folder(hf, tmp_path):
    """llava-hf adds <image> + pad rows to Vicuna's vocabulary: the LLM built from its own folder is resized."""
    import copy
    hf.save_pretrained(tmp_path / 'llava')
    small = copy.deepcopy(hf.config)
    small.text_config.vocab_size = 96
    with pytest.raises(KeyError, match='shape mismatch'):
        load_llava_checkpoint(StandIn(type(hf)(small)), str(tmp_path / 'llava'), strict=True, resize_vocab=False)
    ours = StandIn(type(hf)(small))
    assert load_llava_checkpoint(ours, str(tmp_path / 'llava'), strict=True).ok
    assert ours.llm.get_input_embeddings().weight.shape[0] == 100
    assert_same_weights(ours, hf)
