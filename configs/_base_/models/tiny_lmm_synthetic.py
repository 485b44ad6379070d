"""Tiny multimodal LLM parts for the synthetic VQA set on a CPU, shared by the tiny LLaVA / VLoRA configs.

A tiny CLIP vision tower built from its config (64x64 image, 16x16 patches -> 16 visual tokens, 2 layers of
width 64, TRAINED: a random frozen tower gives too weak features) and a random 4-layer Qwen2 of width 128 (GQA: 4
heads, 2 KV heads) with the set's own byte-level BPE tokenizer (730 tokens, vocabulary 768). ``model`` is the
tiny LLaVA (``mlp2x_gelu`` projector); chatml stop string, short answers.
"""
from transformers import CLIPVisionConfig, Qwen2Config

from llmvision.models.lmm.llava import LLaVAModel, vision_model_from_config
from llmvision.utils.hf_builder import causal_lm_from_config

model = dict(
    type=LLaVAModel,
    vision_encoder=dict(type=vision_model_from_config, seed=0,
                        config=dict(type=CLIPVisionConfig, image_size=64, patch_size=16, hidden_size=64,
                                    intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)),
    llm=dict(type=causal_lm_from_config, seed=0,
             config=dict(type=Qwen2Config, vocab_size=768, hidden_size=128, intermediate_size=256,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False)),
    tokenizer='data/synthetic_vqa/llm_tokenizer',
    projector='mlp2x_gelu',
    freeze_vision=False,
    stop_strings=['<|im_end|>'],
    max_new_tokens=24)
