"""LLaVA-1.5 recipe on Qwen2-0.5B-Instruct, stage 2 (visual instruction tuning): projector + LLM learn on the
665K instruction mix.

CLIP ViT-L/14-336 (frozen) -> mlp2x_gelu projector -> Qwen2-0.5B-Instruct, both trained; chatml template
(``<|im_start|>user ... <|im_end|>``), loss on the answers only.
Recipe (REFERENCE.md section 8): lr 2e-5, global batch 128 = 16 per GPU x 8 GPUs x 1 accumulation step (on 4 GPUs
add ``--cfg-options optim_wrapper.accumulative_counts=2``), 1 epoch, cosine, warm-up 3%, weight decay 0, bf16,
max length 2048, images padded to a square with the CLIP mean colour.

Starts from the pre-training run's checkpoint (``load_from``: the projector; the LLM and CLIP come from their
local folders ``checkpoints/Qwen2-0.5B-Instruct/`` and ``checkpoints/clip-vit-large-patch14-336/``); data in
``data/llava/`` (see ``configs/_base_/datasets/llava_v15_data.py``). A 0.5B LLM needs no parameter sharding:
ZeRO-2 (or plain DDP) is enough:

    bash dist_train.sh configs/llava/llava_qwen2_0.5b_finetune.py 8 --deepspeed zero2 --amp bf16

A transformers LLaVA on Qwen2-0.5B (``llava-hf`` layout, e.g. ``llava-interleave-qwen-0.5b-hf``) loads with
``--weights`` after ``tools/convert_checkpoint.py FOLDER ours.pth --from llava-hf``.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *  # noqa: F401,F403
    from .._base_.models.llava_v15_clip_l336 import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llava_v15 import *  # noqa: F401,F403

llm_path = 'checkpoints/Qwen2-0.5B-Instruct'
model.llm.pretrained_model_name_or_path = llm_path
model.update(tokenizer=llm_path, stop_strings=['<|im_end|>'])
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='chatml')
load_from = 'work_dirs/llava_qwen2_0.5b_pretrain/epoch_1.pth'
