"""VLoRA-7B, stage 2 (visual instruction tuning): generator + LLM learn on the LLaVA-1.5 665K instruction mix.

CLIP ViT-L/14-336 (frozen) -> perceptual weights generator (d = 512, depth 8, 8 queries, rank 64, alpha 64,
q/k/v/o/m, skip 4) -> Vicuna-7B v1.5 (trained); Vicuna v1 template, loss on the answers only; the LLM sees the
text only. Recipe (REFERENCE.md section 3, released ``scripts/finetune.sh``): lr 2e-5, global batch 128 = 16 per
GPU x 8 GPUs, 1 epoch, cosine, warm-up 3%, weight decay 0, bf16, max length 2048, images padded to a square,
gradient checkpointing, ZeRO-2:

    bash dist_train.sh configs/vlora/vlora_vicuna_7b_finetune.py 8 --deepspeed zero2 --amp bf16

Starts from the pre-training run (``load_from``). The released scripts pre-train the generator at d = 1024 and
build it at d = 512 here, so a d = 1024 stage-1 generator does not fit (the loader logs the shape mismatches);
to chain our two stages keep one width: ``--cfg-options model.weight_generator.dim=1024``. A released stage-1
``mm_projector.bin`` loads with :func:`llmvision.checkpoint.vlora.load_vlora_projector`.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *
    from .._base_.models.llava_v15_clip_l336 import *
    from .._base_.models.vlora import *
    from .._base_.runtime import *
    from .._base_.schedules.llava_v15 import *

llm_path = 'checkpoints/vicuna-7b-v1.5'
model.update(vlora_model, tokenizer=llm_path, stop_strings=['</s>'])
model.llm.pretrained_model_name_or_path = llm_path
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='vicuna_v1', image_length=vlora_image_length)
load_from = 'work_dirs/vlora_vicuna_7b_pretrain/epoch_1.pth'
