"""LLaVA-1.5-7B, stage 2 (visual instruction tuning): projector + LLM learn on the 665K instruction mix.

CLIP ViT-L/14-336 (frozen) -> mlp2x_gelu projector -> Vicuna-7B v1.5, both trained; Vicuna v1 template
(``USER: ... ASSISTANT: ...</s>``), loss on the answers only.
Recipe (REFERENCE.md section 8): lr 2e-5, global batch 128 = 16 per GPU x 8 GPUs x 1 accumulation step (on 4 GPUs
add ``--cfg-options optim_wrapper.accumulative_counts=2``), 1 epoch, cosine, warm-up 3%, weight decay 0, bf16,
max length 2048, images padded to a square with the CLIP mean colour.

Starts from the pre-training run's checkpoint (``load_from``: the projector; the LLM and CLIP come from their
local folders ``checkpoints/vicuna-7b-v1.5/`` and ``checkpoints/clip-vit-large-patch14-336/``); data in
``data/llava/`` (see ``configs/_base_/datasets/llava_v15_data.py``). Train with ZeRO-3, as the original
(ZeRO-2 fits a 7B model on 80 GB GPUs too):

    bash dist_train.sh configs/llava/llava_v15_vicuna_7b_finetune.py 8 --deepspeed zero3 --amp bf16

A released LLaVA-1.5 model instead: ``tools/convert_checkpoint.py checkpoints/llava-1.5-7b-hf llava15_7b.pth
--from llava-hf``, then ``tools/image_demo.py IMG THIS_CONFIG --weights llava15_7b.pth --mode chat --text "..."``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *  # noqa: F401,F403
    from .._base_.models.llava_v15_clip_l336 import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llava_v15 import *  # noqa: F401,F403

llm_path = 'checkpoints/vicuna-7b-v1.5'
model.llm.pretrained_model_name_or_path = llm_path
model.update(tokenizer=llm_path, stop_strings=['</s>'])
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='vicuna_v1')
load_from = 'work_dirs/llava_v15_vicuna_7b_pretrain/epoch_1.pth'
