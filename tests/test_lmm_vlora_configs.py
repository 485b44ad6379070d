"""configs/vlora/: the recipes load with the released values (REFERENCE.md section 3), the 7B / Qwen2-0.5B
generators have the released shapes (built on the meta device), missing local folders are named."""
import os

import pytest
import torch
from mmengine.config import Config

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
RECIPES = {  # config -> (LLM folder, template, generator width, lr, global batch (x 8 GPUs), LLM frozen, load_from)
    'vlora_vicuna_7b_pretrain': ('checkpoints/vicuna-7b-v1.5', 'vicuna_v1', 1024, 5e-5, 768, True, False),
    'vlora_vicuna_7b_finetune': ('checkpoints/vicuna-7b-v1.5', 'vicuna_v1', 512, 2e-5, 128, False, True),
    'vlora_qwen2_0.5b_finetune': ('checkpoints/Qwen2-0.5B-Instruct', 'chatml', 512, 2e-5, 128, False, True),
}


def load(name):
    import llmvision  # noqa: F401
    return Config.fromfile(os.path.join(ROOT, 'configs/vlora', name + '.py'))


@pytest.mark.parametrize('name', sorted(RECIPES))
def test_recipe_values(name):
    from llmvision.models.lmm import PerceptualWeightsGenerator, VLoRAModel
    llm_path, template, dim, lr, global_batch, frozen, loads = RECIPES[name]
    cfg = load(name)
    m = cfg.model
    assert m.type is VLoRAModel and m.projector is None and m.vision_feature_layer == -2
    assert m.vision_encoder.pretrained_model_name_or_path == 'checkpoints/clip-vit-large-patch14-336'
    assert m.llm.pretrained_model_name_or_path == llm_path and m.tokenizer == llm_path and m.freeze_llm is frozen
    assert m.llm.dtype == (torch.bfloat16 if frozen else torch.float32)  # fine-tuning steps fp32 weights
    assert m.gradient_checkpointing and m.freeze_vision and m.vision_encoder.dtype == torch.bfloat16
    g = m.weight_generator
    assert g.type is PerceptualWeightsGenerator and g.dim == dim
    released = (8, 64, 64, 'qkvom', 4, 16, 4)
    assert (g.depth, g.rank, g.alpha, g.weight_types, g.skip, g.num_heads, g.mlp_ratio) == released
    enc = cfg.train_dataloader.dataset.encoder
    assert enc.template == template and enc.tokenizer == llm_path and enc.image_length == 1
    assert cfg.train_dataloader.batch_size * 8 * cfg.optim_wrapper.accumulative_counts == global_batch
    assert cfg.auto_scale_lr.base_batch_size == global_batch and cfg.optim_wrapper.optimizer.lr == lr
    assert cfg.optim_wrapper.optimizer.weight_decay == 0.0 and cfg.train_cfg.max_epochs == 1
    assert cfg.param_scheduler[0].end == pytest.approx(0.03)
    assert (cfg.get('load_from') is not None) == loads


@pytest.mark.parametrize('llm, layers, kv', [('llama-7b', (3, 7, 11, 15, 19, 23, 27, 31), 4096),
                                             ('qwen2-0.5b', (3, 7, 11, 15, 19, 23), 128)])
def test_released_shapes(llm, layers, kv):
    """The recipe's generator on the real LLM shapes (meta device: no memory, no download)."""
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    from llmvision.models.lmm.vlora import target_sizes
    from llmvision.utils.hf_builder import build_object
    shapes = dict(vocab_size=1000, hidden_size=4096, intermediate_size=11008, num_hidden_layers=32,
                  num_attention_heads=32, num_key_value_heads=32) if llm == 'llama-7b' else \
        dict(vocab_size=1000, hidden_size=896, intermediate_size=4864, num_hidden_layers=24, num_attention_heads=14,
             num_key_value_heads=2)
    config = (LlamaConfig if llm == 'llama-7b' else Qwen2Config)(**shapes)
    with torch.device('meta'):
        model = AutoModelForCausalLM.from_config(config)
        ins, outs = target_sizes(model, 0, 'qkvom')
        gen_cfg = dict(load('vlora_vicuna_7b_finetune').model.weight_generator)
        gen = build_object(dict(gen_cfg, visual_dim=1024, num_positions=576, num_llm_layers=len(model.model.layers),
                                in_features=ins, out_features=outs))
    h = shapes['hidden_size']
    assert gen.layer_ids == layers and gen.gen['q'].queries.shape == (1, len(layers), 512)
    assert gen.gen['o'].weights_head.weight.shape == (h * 64, 512) and gen.pos_embed.shape == (1, 576, 512)
    assert gen.lora_B['k'].shape == gen.lora_B['v'].shape == (len(layers), kv, 64)
    assert gen.lora_B['q'].shape == gen.lora_B['m'].shape == (len(layers), h, 64)


def test_missing_local_folders_name_what_to_put_where():
    from llmvision.models.lmm import tiny_clip_vision_cfg
    from llmvision.registry import MODELS
    cfg = load('vlora_vicuna_7b_finetune')
    with pytest.raises(FileNotFoundError, match='clip-vit-large-patch14-336.*put the model files'):
        MODELS.build(cfg.model)
    cfg.model.vision_encoder = tiny_clip_vision_cfg()
    with pytest.raises(FileNotFoundError, match='vicuna-7b-v1.5.*put the model files'):
        MODELS.build(cfg.model)


def test_tiny_config_is_the_tiny_llava_with_vlora():
    """Same data, schedule, hooks and model parts as the tiny LLaVA (the it-learns comparison is fair)."""
    from llmvision.models.lmm import VLoRAModel
    ours = load('vlora_tiny_synthetic')
    llava = Config.fromfile(os.path.join(ROOT, 'configs/llava/llava_tiny_synthetic.py'))
    for key in ('train_dataloader', 'val_dataloader', 'test_dataloader', 'optim_wrapper', 'param_scheduler',
                'train_cfg', 'default_hooks', 'test_evaluator', 'randomness', 'env_cfg'):
        assert ours[key] == llava[key], key
    differ = {k for k in set(ours.model) | set(llava.model) if not ours.model.get(k) == llava.model.get(k)}
    assert differ == {'type', 'projector', 'weight_generator'} and ours.model.type is VLoRAModel
