"""LLMDet-L: Grounding-DINO Swin-L co-trained with an LLM captioner (REFERENCE.md section 2).

    bash dist_train.sh configs/llmdet/llmdet_swin_l.py 8

Detector: ``configs/grounding_dino/grounding_dino_swin_l.py`` (start from an MM-GDINO checkpoint via
``load_from``). Captioner: ``configs/_base_/models/llmdet_captioner.py`` (LLaVA-OneVision's Qwen2-0.5B +
LoRA, its pre-aligned projector).
Frozen: Swin, neck, LLM base; BERT at lr x 0.1. Schedule: llmdet_150k (AdamW 1e-4, clip 0.1, fp16
AMP, 150k iterations, 2 images per GPU x 8). Data: GroundingCap-style ODVG grounding lines with long
captions, ``configs/_base_/datasets/grounding_cap_odvg.py``; validation on LVIS minival.
Published (L): LVIS minival 51.1 AP.

Released LLMDet-L (``configs/grounding_dino_swin_l.py`` of the release, on top of its Swin-T config;
the official file is not in our reference index, it was read in a public fork of the release):
5 feature levels (Swin stages 1-4 + 1 extra, strides 4..64), and to save memory the image caption
uses p5 only (``use_p4_input=False``: 20x20 = 400 visual tokens, no separator, no p4 grid), the
whole sequence cut at 1200 tokens (``lmm_max_token_length``) and LoRA r 64 (alpha 256 kept). p5 is
the released "second-to-last level", which is level 3 of 5 here (level 2 is stride 16); the LLM
cross-attention blocks attend to all 5 levels. It starts from MM-GDINO-L o365+goldg (LLMDet README).
Our earlier choice (1130 tokens from levels (2, 1), i.e. strides 16 and 8 on this 5-level model):
``image_token_levels=(3, 2), image_token_sizes=(20, 27), max_image_sequence_len=1600`` and
``lora.r=128`` restore p5 + p4 at the Swin-T budget.

Offline, local folders: ``checkpoints/bert-base-uncased``, ``checkpoints/my_llava-onevision-qwen2-0.5b-ov-2``
(the released LLaVA-OneVision-Qwen2-0.5B folder: config, weights, tokenizer files, ``mm_projector2.bin``).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.grounding_cap_odvg import *  # noqa: F401,F403
    from .._base_.datasets.lvis_minival import *  # noqa: F401,F403
    from .._base_.models.llmdet_captioner import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llmdet_150k import *  # noqa: F401,F403
    from ..grounding_dino.grounding_dino_swin_l import *  # noqa: F401,F403

from llmvision.models.detectors import LLMDet

captioner = dict(captioner)  # noqa: F405  (the L values below, not the shared base's)
captioner.update(
    image_token_levels=(3,),            # p5: stride 32 is level 3 of the 5 levels
    image_token_sizes=(20,),
    max_image_sequence_len=1200,        # released lmm_max_token_length for L (p5 only)
    lora=dict(captioner['lora'], r=64),
    region_cross_attn=dict(captioner['region_cross_attn'], num_levels=num_levels))  # noqa: F405
model.update(type=LLMDet, freeze_backbone=True, freeze_neck=True, captioner=captioner)  # noqa: F405
model['encoder']['num_cp'] = encoder_num_cp  # noqa: F405
optim_wrapper['paramwise_cfg'] = llmdet_paramwise_cfg  # noqa: F405
default_hooks['checkpoint']['interval'] = val_interval  # noqa: F405
randomness = dict(seed=llmdet_seed)  # noqa: F405
# the MM-GDINO checkpoint LLMDet-L starts from (grounding_dino_swin-l_pretrain_obj365_goldg-34dcdc53.pth),
# converted with tools/convert_checkpoint.py
load_from = 'checkpoints/mm_grounding_dino_large_o365_goldg_llmvision.pth'
