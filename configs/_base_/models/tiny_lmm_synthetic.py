"""Tiny multimodal LLM parts for the synthetic VQA set on a CPU, shared by the tiny LLaVA / VLoRA configs.

``tiny_vision_tower``: a tiny CLIP tower built from its config (64x64 image, 16x16 patches -> 16 visual tokens,
2 layers of width 64, a per-pixel stem in front of the patch projection). Like LLaVA's CLIP it comes
PRE-TRAINED and stays FROZEN: ``configs/llava/tiny_vision_pretrain_synthetic.py`` trains it first (patch tags on
the same synthetic scenes, ~5 min on one CPU thread) and writes ``tiny_vision_checkpoint``. Why: trained through
the LLM from scratch the tiny tower collapsed (the same features for every image) and a frozen random tower is too
weak (benchmarks/RESULTS.md, "LLaVA it learns"). ``model.vision_encoder.checkpoint=None`` gives a random tower
(tests). The LLM: a random 4-layer Qwen2 of width 128 (GQA: 4 heads, 2 KV heads) with the set's own byte-level
BPE tokenizer (vocabulary 768). ``model`` is the tiny LLaVA (``mlp2x_gelu`` projector); chatml stop string,
short answers.
"""
from transformers import CLIPVisionConfig, Qwen2Config

from llmvision.models.lmm.llava import LLaVAModel
from llmvision.models.lmm.vision_tower import vision_model_from_config
from llmvision.utils.hf_builder import causal_lm_from_config

tiny_vision_tower = dict(type=vision_model_from_config, seed=0, pixel_stem=(32, 32),
                         config=dict(type=CLIPVisionConfig, image_size=64, patch_size=16, hidden_size=64,
                                     intermediate_size=128, num_hidden_layers=2, num_attention_heads=4))
tiny_vision_checkpoint = 'work_dirs/tiny_vision_pretrain_synthetic/iter_600.pth'

model = dict(
    type=LLaVAModel,
    vision_encoder=dict(tiny_vision_tower, checkpoint=tiny_vision_checkpoint),
    llm=dict(type=causal_lm_from_config, seed=0,
             config=dict(type=Qwen2Config, vocab_size=768, hidden_size=128, intermediate_size=256,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False)),
    tokenizer='data/synthetic_vqa/llm_tokenizer',
    projector='mlp2x_gelu',
    freeze_vision=True,
    stop_strings=['<|im_end|>'],
    max_new_tokens=24)
