"""LLaVA-1.5-7B, stage 1 (pre-training): the projector alone learns on the 558K image captions.

CLIP ViT-L/14-336 (frozen) -> mlp2x_gelu projector (trained) -> Vicuna-7B v1.5 (frozen); Vicuna v1 template.
Recipe (REFERENCE.md section 8): lr 1e-3, global batch 256 = 32 per GPU x 8 GPUs x 1 accumulation step (on 4 GPUs
add ``--cfg-options optim_wrapper.accumulative_counts=2``), 1 epoch, cosine, warm-up 3%, weight decay 0, bf16,
max length 2048, images resized to 336.

Local paths (llmvision never downloads): ``checkpoints/vicuna-7b-v1.5/`` (config, weights, tokenizer),
``checkpoints/clip-vit-large-patch14-336/``, ``data/llava/LLaVA-Pretrain/`` (json + images).
Train with ZeRO-2, as the original pre-training:

    bash dist_train.sh configs/llava/llava_v15_vicuna_7b_pretrain.py 8 --deepspeed zero2 --amp bf16

The fine-tuning config starts from this run's last checkpoint (``load_from``); a DeepSpeed run saves a checkpoint
folder: turn it into one file with the ``zero_to_fp32.py`` DeepSpeed writes into the work dir.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *  # noqa: F401,F403
    from .._base_.models.llava_v15_clip_l336 import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llava_v15 import *  # noqa: F401,F403

import torch

llm_path = 'checkpoints/vicuna-7b-v1.5'
model.llm.update(pretrained_model_name_or_path=llm_path, dtype=torch.bfloat16)  # frozen: bf16 halves it
model.update(tokenizer=llm_path, stop_strings=['</s>'], freeze_llm=True)
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='vicuna_v1')
train_dataloader.dataset.update(pretrain_data)
train_dataloader.batch_size = 32
optim_wrapper.optimizer.lr = 1e-3
auto_scale_lr.base_batch_size = 256
