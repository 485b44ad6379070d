"""LLaVA-1.5 model skeleton (REFERENCE.md section 8), shared by the configs/llava/ recipes.

CLIP ViT-L/14-336 from a local folder, frozen; hidden states of layer -2, patch tokens only (576 per image)
-> ``mlp2x_gelu`` projector -> the causal LM that the leaf config names (``model.llm`` path, ``model.tokenizer``,
``model.stop_strings``). Precision: train with ``--amp bf16`` (bf16 autocast, no grad scaler). The LLM is
loaded in fp32 so that fine-tuning updates fp32 weights (LLaVA's DeepSpeed bf16 kept fp32 master weights; bf16
weights stepped by AdamW at lr 2e-5 would lose most updates to rounding); the pre-training configs, whose LLM is
frozen, load it in bf16 to halve its memory; the frozen CLIP tower is bf16. Gradient checkpointing in the LLM;
sequences cut at 2048 tokens after image expansion.
"""
import torch
from transformers import AutoModelForCausalLM, CLIPVisionModel

from llmvision.models.lmm import LLaVAModel, LMMDataPreprocessor

clip_path = 'checkpoints/clip-vit-large-patch14-336'
max_length = 2048

model = dict(
    type=LLaVAModel,
    vision_encoder=dict(type=CLIPVisionModel.from_pretrained, pretrained_model_name_or_path=clip_path,
                        dtype=torch.bfloat16),
    llm=dict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path=None, dtype=torch.float32),
    tokenizer=None,
    projector='mlp2x_gelu',
    vision_feature_layer=-2,
    vision_select='default',
    freeze_vision=True,
    freeze_llm=False,
    gradient_checkpointing=True,
    max_length=max_length,
    max_new_tokens=128,
    data_preprocessor=dict(type=LMMDataPreprocessor))
