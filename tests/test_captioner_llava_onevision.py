"""LLMDet's LLM from a LLaVA-OneVision-Qwen2 folder (``"model_type": "llava"``): the language model loads as a
plain ``Qwen2ForCausalLM``, the vision-side weights are left out, and the captioner builds on it."""
import json
import os

import pytest
import torch

from helpers import build_captioner


def _llava_ov_folder(root, vocab_size, extra=True):
    from safetensors.torch import load_file, save_file
    from transformers import Qwen2Config, Qwen2ForCausalLM
    cfg = Qwen2Config(vocab_size=vocab_size, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False)
    torch.manual_seed(0)
    lm = Qwen2ForCausalLM(cfg)
    lm.save_pretrained(root)
    weights = os.path.join(root, 'model.safetensors')
    sd = load_file(weights)
    if extra:       # what a LLaVA-OneVision checkpoint holds beside the language model
        sd.update({'model.mm_projector.0.weight': torch.zeros(32, 1152), 'model.image_newline': torch.zeros(32),
                   'model.vision_tower.vision_tower.vision_model.post_layernorm.weight': torch.ones(1152)})
    save_file(sd, weights, metadata={'format': 'pt'})
    with open(os.path.join(root, 'config.json')) as f:
        raw = json.load(f)
    raw.update(model_type='llava', architectures=['LlavaQwenForCausalLM'], mm_hidden_size=1152,
               mm_projector_type='mlp2x_gelu', mm_vision_tower='google/siglip-so400m-patch14-384')
    with open(os.path.join(root, 'config.json'), 'w') as f:
        json.dump(raw, f)
    return lm.state_dict()


def test_language_model_loads_and_vision_parts_are_left_out(tmp_path):
    from transformers import AutoModelForCausalLM

    from llmvision.models.captioners import qwen2_from_llava_onevision
    expected = _llava_ov_folder(str(tmp_path), vocab_size=100)
    with pytest.raises(ValueError, match='LlavaConfig'):       # the reason this loader exists
        AutoModelForCausalLM.from_pretrained(str(tmp_path))
    lm = qwen2_from_llava_onevision(str(tmp_path), dtype=torch.float16)
    assert type(lm).__name__ == 'Qwen2ForCausalLM' and lm.dtype == torch.float16
    assert sorted(lm.state_dict()) == sorted(expected)
    for k, v in expected.items():
        assert torch.equal(lm.state_dict()[k], v.half()), k
    # a language weight missing from the folder is an error naming it
    from safetensors.torch import load_file, save_file
    weights = tmp_path / 'model.safetensors'
    sd = load_file(str(weights))
    del sd['model.layers.1.mlp.up_proj.weight']
    save_file(sd, str(weights), metadata={'format': 'pt'})
    with pytest.raises(KeyError, match='model.layers.1.mlp.up_proj.weight'):
        qwen2_from_llava_onevision(str(tmp_path))
    with pytest.raises(FileNotFoundError, match='config.json'):
        qwen2_from_llava_onevision(str(tmp_path / 'nowhere'))


def test_captioner_builds_on_the_llava_onevision_llm(tokenizer, tmp_path):
    from llmvision.models.captioners import qwen2_from_llava_onevision
    expected = _llava_ov_folder(str(tmp_path), vocab_size=len(tokenizer))
    cap = build_captioner(tokenizer, llm=dict(type=qwen2_from_llava_onevision, path=str(tmp_path)))
    base = cap.causal_lm.state_dict()
    assert torch.equal(base['model.layers.0.self_attn.q_proj.base_layer.weight'],
                       expected['model.layers.0.self_attn.q_proj.weight'])
    assert torch.equal(base['lm_head.weight'], expected['lm_head.weight'])
