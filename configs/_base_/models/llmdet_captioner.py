"""LLMDet's captioner (REFERENCE.md sections 2, 9): the Qwen2-0.5B LLM of LLaVA-OneVision (frozen, local
folder) + LoRA r 128 / alpha 256 on q,k,v,o,gate,up,down; image captions from the encoder memory (20x20 stride-32
+ separator + 27x27 stride-16 = 1130 tokens; the whole sequence, prompt + visual tokens + answer,
<= 1600 tokens as the released ``lmm_max_token_length``), region captions for up to 16 matched
queries (answers <= 40 tokens). Leaf configs set ``model.update(type=LLMDet,
captioner=captioner)``.

Released recipe (LLMDet @ 5426efb, REFERENCE.md section 9): LoRA dropout 0; the box sine embedding
of xyxy; 6 deformable cross-attention blocks in the LLM (layers 0, 4, ..., 20) for the region branch,
with the released structure (896->256 down-projection, MSDA, zero-init 256->896 up-projection,
RMSNorm, residual).
The leaves also apply ``llmdet_paramwise_cfg`` (only ``absolute_pos_embed`` is exempt from weight
decay, as released), ``encoder_num_cp`` (gradient checkpointing of all 6 encoder layers) and
``llmdet_seed``. ``region_cross_attn=None`` and ``box_format='cxcywh'`` restore our earlier choice;
``max_image_sequence_len=None, max_image_caption_len=1600`` our earlier answer-only limit.
Levels: ``image_token_levels`` index the encoder levels; the released code takes p5 / p4 as the
second- and third-to-last level, so (2, 1) with 4 levels (Swin-T/B) and (3, 2) with 5 (Swin-L).

LLM and projector as released: the language model of the authors' ``my_llava-onevision-qwen2-0.5b-ov-2``
(a LLaVA-OneVision-Qwen2-0.5B folder, read by ``qwen2_from_llava_onevision``; vision tower and LLaVA
projector left out) and its pre-aligned ``mm_projector2.bin`` (256-d detector features -> 896) loaded into
both the image and the region projector (``projector_checkpoint``). Both come from the LLMDet release
(huggingface ``fushh7/LLMDet``). Without that projector: ``projector_checkpoint=None`` and a stage-1 run
(``configs/llmdet/llmdet_swin_t_stage1.py``) first; another chat LLM: ``llm=dict(type=
AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path='checkpoints/Qwen2-0.5B-Instruct')``
and ``tokenizer`` the same folder.

bf16: set ``llm_dtype = torch.bfloat16`` in the leaf and ``optim_wrapper.update(type=BF16OptimWrapper)``
(or ``tools/train.py --amp bf16``): bf16 autocast, no fp16 loss scaler (which cannot unscale bf16).
"""
import torch
from peft import LoraConfig

from llmvision.models.captioners import LLMCaptioner, qwen2_from_llava_onevision

llm_path = 'checkpoints/my_llava-onevision-qwen2-0.5b-ov-2'
projector_checkpoint = 'checkpoints/my_llava-onevision-qwen2-0.5b-ov-2/mm_projector2.bin'
llm_dtype = torch.float32

captioner = dict(
    type=LLMCaptioner,
    llm=dict(type=qwen2_from_llava_onevision, path=llm_path, dtype=llm_dtype),
    tokenizer=llm_path,
    projector_checkpoint=projector_checkpoint,   # released lmm_connector, into both projectors
    projector_prefix='mm_projector',             # released lmm_connector_prefix
    lora=dict(type=LoraConfig, r=128, lora_alpha=256, lora_dropout=0.0, task_type='CAUSAL_LM',
              target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                              'down_proj']),
    feat_dims=256,
    box_format='xyxy',
    image_token_levels=(2, 1),
    image_token_sizes=(20, 27),
    max_image_caption_len=None,     # released: no answer-only limit ...
    max_image_sequence_len=1600,    # ... the whole sequence is cut at lmm_max_token_length
    max_region_caption_len=40,
    max_regions=16,
    image_loss_weight=1.0,
    region_loss_weight=1.0,
    region_cross_attn=dict(every=4, embed_dims=256, num_heads=8, num_points=4),
    gradient_checkpointing=True)

# released recipe values the leaf configs apply after their model is defined
llmdet_paramwise_cfg = dict(custom_keys={
    'backbone': dict(lr_mult=0.1),
    'text_encoder': dict(lr_mult=0.1),
    'absolute_pos_embed': dict(decay_mult=0.0),
})
encoder_num_cp = 6
llmdet_seed = 624982218
