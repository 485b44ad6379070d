"""LLMDet-B: Grounding-DINO Swin-B co-trained with an LLM captioner (REFERENCE.md section 2).

    bash dist_train.sh configs/llmdet/llmdet_swin_b.py 8

Detector: ``configs/grounding_dino/grounding_dino_swin_b.py`` (start from an MM-GDINO checkpoint via
``load_from``). Captioner: ``configs/_base_/models/llmdet_captioner.py`` (LLaVA-OneVision's Qwen2-0.5B +
LoRA, its pre-aligned projector).
Frozen: Swin, neck, LLM base; BERT at lr x 0.1. Schedule: llmdet_150k (AdamW 1e-4, clip 0.1, fp16
AMP, 150k iterations, 2 images per GPU x 8). Data: GroundingCap-style ODVG grounding lines with long
captions, ``configs/_base_/datasets/grounding_cap_odvg.py``; validation on LVIS minival.
Published (B): LVIS minival 48.3 AP.

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
    from ..grounding_dino.grounding_dino_swin_b import *  # noqa: F401,F403

from llmvision.models.detectors import LLMDet

model.update(type=LLMDet, freeze_backbone=True, freeze_neck=True, captioner=captioner)  # noqa: F405
model['encoder']['num_cp'] = encoder_num_cp  # noqa: F405
optim_wrapper['paramwise_cfg'] = llmdet_paramwise_cfg  # noqa: F405
default_hooks['checkpoint']['interval'] = val_interval  # noqa: F405
randomness = dict(seed=llmdet_seed)  # noqa: F405
# the MM-GDINO checkpoint LLMDet-B starts from (grounding_dino_swin-b_pretrain_obj365_goldg_v3de-f83eef00.pth,
# LLMDet README), converted with tools/convert_checkpoint.py
load_from = 'checkpoints/mm_grounding_dino_base_o365_goldg_v3det_llmvision.pth'
