"""VLoRA-7B, stage 1 (pre-training): the perceptual weights generator alone learns on image captions.

CLIP ViT-L/14-336 (frozen, layer -2, 576 patch tokens) -> perceptual weights generator (d = 1024, depth 8,
8 queries -> layers 3, 7, ..., 31, rank 64, alpha 64, q/k/v/o/m) -> LoRA side path of Vicuna-7B v1.5 (frozen).
Recipe (REFERENCE.md section 3, released ``scripts/pretrain.sh``): lr 5e-5, global batch 768 = 96 per GPU x 8
GPUs, 1 epoch, cosine, warm-up 3%, weight decay 0, bf16 (the frozen LLM is loaded in bf16), max length 2048,
gradient checkpointing, ZeRO-2:

    bash dist_train.sh configs/vlora/vlora_vicuna_7b_pretrain.py 8 --deepspeed zero2 --amp bf16

Data: the released run used CapsFusion captions (``capsfusion_113m_full_data.json``) and fine-tuned from the
step-40000 checkpoint (30.7M samples); put the json and images under ``data/vlora/capsfusion/``. The released
run used LLaVA's ``plain`` format for captions; here the Vicuna v1 template (as the LLaVA recipes).
Local model folders: ``checkpoints/vicuna-7b-v1.5/``, ``checkpoints/clip-vit-large-patch14-336/``.
"""
import torch
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *
    from .._base_.models.llava_v15_clip_l336 import *
    from .._base_.models.vlora import *
    from .._base_.runtime import *
    from .._base_.schedules.llava_v15 import *

llm_path = 'checkpoints/vicuna-7b-v1.5'
model.update(vlora_model, tokenizer=llm_path, stop_strings=['</s>'], freeze_llm=True)
model.llm.update(pretrained_model_name_or_path=llm_path, dtype=torch.bfloat16)  # frozen: bf16 halves its memory
model.weight_generator.dim = 1024
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='vicuna_v1', image_length=vlora_image_length)
train_dataloader.dataset.update(data_root='data/vlora/capsfusion', ann_file='capsfusion_113m_full_data.json',
                                data_prefix=dict(img='images'), image_aspect='resize')
train_dataloader.batch_size = 96
optim_wrapper.optimizer.lr = 5e-5
auto_scale_lr.base_batch_size = 768
