"""LLM-wrapper REC selector: Llama-3-8B-Instruct + LoRA on RefCOCO (unc) detector candidates.

Recipe (model, data, schedule): ``configs/_base_/models/llm_wrapper_refcoco.py``.

Offline, local paths:
  checkpoints/Meta-Llama-3-8B-Instruct/   (config, safetensors, tokenizer with chat template)
  data/refcoco/refcoco/{instances.json, refs(unc).p}, data/coco/train2014/
  work_dirs/rec_candidates/refcoco_{split}.jsonl  from
      python tools/rec_candidates.py configs/llm_wrapper/rec_candidates_gdino.py \
          --data-root data/refcoco --split train --out work_dirs/rec_candidates/refcoco_train.jsonl
Train: python tools/train.py configs/llm_wrapper/llm_wrapper_llama3_8b_refcoco.py
Table: python tools/rec_eval.py --data-root data/refcoco --splits val testA testB \
           --candidates gdino=work_dirs/rec_candidates/refcoco_{split}.jsonl \
           --config <this file> --checkpoint work_dirs/.../epoch_1.pth --zero-shot

Llama-3 has no pad token: the selector pads with EOS (masked out of the loss). An 8B model in
bf16 with r-128 LoRA needs a >= 40 GB GPU at batch 4; the original used a 4-bit NF4 base (QLoRA):
``llm_wrapper_llama3_8b_refcoco_qlora.py`` (CUDA + bitsandbytes).
"""
from mmengine.config import read_base

with read_base():
    from .._base_.models.llm_wrapper_refcoco import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403

llm_path = 'checkpoints/Meta-Llama-3-8B-Instruct'
tokenizer['pretrained_model_name_or_path'] = llm_path  # noqa: F405
model['llm']['pretrained_model_name_or_path'] = llm_path  # noqa: F405
model['tokenizer']['pretrained_model_name_or_path'] = llm_path  # noqa: F405
train_dataloader['dataset']['tokenizer']['pretrained_model_name_or_path'] = llm_path  # noqa: F405
