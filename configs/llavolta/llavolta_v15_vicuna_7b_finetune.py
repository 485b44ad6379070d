"""LLaVolta on LLaVA-1.5-7B, stage 2 (visual instruction tuning) with the paper's best staged compression.

The LLaVA-1.5 fine-tuning recipe (``configs/llava/llava_v15_vicuna_7b_finetune.py``: CLIP ViT-L/14-336 frozen,
mlp2x_gelu, Vicuna-7B v1.5, lr 2e-5, global batch 128, 1 epoch, cosine, warm-up 3%, bf16, max length 2048) with
the visual context compressor inside the LLM: four stages "deeper then wider", (K=2,S=8) -> (K=16,S=8) ->
(K=16,S=2) -> uncompressed, a quarter of the iterations each, tested uncompressed (REFERENCE.md section 4):

    bash dist_train.sh configs/llavolta/llavolta_v15_vicuna_7b_finetune.py 8 --deepspeed zero3 --amp bf16

Other schemes of the paper with the same config:
  staged:  ``--cfg-options custom_hooks.0.preset=three_wider`` (single, two, three_deeper, three_wider,
           four_wider_deeper, four_deeper_wider)
  heavy:   ``--cfg-options custom_hooks=[] model.compressor.layer=2 model.compressor.stride=8
           model.compressor.keep_at_inference=True`` (light: ``layer=16``); compression stays on at test time.
"""
from mmengine.config import read_base

with read_base():
    from .._base_.datasets.llava_v15_data import *
    from .._base_.models.llava_v15_clip_l336 import *
    from .._base_.models.llavolta import *
    from .._base_.runtime import *
    from .._base_.schedules.llava_v15 import *

llm_path = 'checkpoints/vicuna-7b-v1.5'
model.llm.pretrained_model_name_or_path = llm_path
model.update(tokenizer=llm_path, stop_strings=['</s>'], compressor=llavolta_staged)
train_dataloader.dataset.encoder.update(tokenizer=llm_path, template='vicuna_v1')
custom_hooks = [llavolta_schedule]
load_from = 'work_dirs/llava_v15_vicuna_7b_pretrain/epoch_1.pth'
