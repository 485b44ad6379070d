"""VLoRA on Qwen2-0.5B-Instruct, stage 2 (visual instruction tuning): generator + LLM on the 665K mix.

As ``vlora_vicuna_7b_finetune.py`` (lr 2e-5, global batch 128 = 16 x 8 GPUs, generator d = 512, images padded,
ZeRO-2, bf16) with Qwen2-0.5B-Instruct: 24 layers -> 6 queries (layers 3, 7, ..., 23); grouped-query attention
(14 heads, 2 KV heads of 64): the k/v factors ``B`` are 128 x 64, the q/o/m ones 896 x 64; chatml template.
Local folders: ``checkpoints/Qwen2-0.5B-Instruct/``, ``checkpoints/clip-vit-large-patch14-336/``, ``data/llava/``.

    bash dist_train.sh configs/vlora/vlora_qwen2_0.5b_finetune.py 8 --deepspeed zero2 --amp bf16

Stage 1 for this LLM is ``vlora_vicuna_7b_pretrain.py`` with ``--work-dir work_dirs/vlora_qwen2_0.5b_pretrain
--cfg-options`` ``model.llm.pretrained_model_name_or_path=Q model.tokenizer=Q
train_dataloader.dataset.encoder.tokenizer=Q train_dataloader.dataset.encoder.template=chatml
model.weight_generator.dim=512`` (``Q = checkpoints/Qwen2-0.5B-Instruct``); its last checkpoint is ``load_from``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *
    from .._base_.models.llava_v15_clip_l336 import *
    from .._base_.models.vlora import *
    from .._base_.runtime import *
    from .._base_.schedules.llava_v15 import *

llm_path = 'checkpoints/Qwen2-0.5B-Instruct'
model.update(vlora_model, tokenizer=llm_path, stop_strings=['<|im_end|>'])
model.llm.pretrained_model_name_or_path = llm_path
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='chatml', image_length=vlora_image_length)
load_from = 'work_dirs/vlora_qwen2_0.5b_pretrain/epoch_1.pth'
