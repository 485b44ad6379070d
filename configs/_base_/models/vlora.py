"""VLoRA on top of the LLaVA-1.5 model skeleton (REFERENCE.md section 3), shared by the configs/vlora/ recipes.

A leaf reads this next to ``llava_v15_clip_l336`` (or a tiny LLaVA model) and turns the LLaVA model into VLoRA
with ``model.update(vlora_model)``: no projector, the CLIP-L/336 layer -2 patch tokens (576 x 1024) go through
the perceptual weights generator (per weight type q, k, v, o, m its own stack of 8 queries and 8 pre-LN decoder
blocks with 16 heads, rank 64, alpha 64) whose low-rank factors are added as a side path on every 4th LLM layer
(``(l + 1) % 4 == 0``); the LLM sees the text only. Generator width: 512 (the released fine-tuning script);
the pre-training leaf sets 1024 (the released pre-training script).

``image_length=1`` in the conversation encoder: an image costs no sequence positions (the placeholder is removed).
"""
from llmvision.models.lmm import PerceptualWeightsGenerator, VLoRAModel

vlora_model = dict(
    type=VLoRAModel,
    projector=None,
    weight_generator=dict(type=PerceptualWeightsGenerator, dim=512, depth=8, rank=64, alpha=64, weight_types='qkvom',
                          skip=4, num_heads=16, mlp_ratio=4))
vlora_image_length = 1
