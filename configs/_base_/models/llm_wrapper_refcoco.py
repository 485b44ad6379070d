"""LLM-wrapper REC selector recipe on RefCOCO (unc) detector candidates: model, data, schedule.

Recipe (REFERENCE.md section 5): LoRA r 128 / alpha 256 / dropout 0.1 on q,k,v,o,gate,up,down +
lm_head; 1 epoch, batch 4, lr 1e-5 decaying linearly to 0 with no warm-up (the HF Trainer default
the released code uses); loss on the answer tokens only; training samples need >= 2 candidates and
keep the best one if its IoU > 0.5, with the released seed-table shuffled copies; prompts > 1024
tokens dropped; no EOS after the answer in the training target (``answer_eos=False``, as released:
the instruct LLM's own end-of-turn stops generation; ``True`` adds the tokenizer's EOS). A 4-bit
NF4 base (QLoRA, GPU + bitsandbytes) as released:
``model.llm = dict(type=quantized_causal_lm, pretrained_model_name_or_path=llm_path)``
(``llmvision.utils.hf_builder``), see ``configs/llm_wrapper/llm_wrapper_qwen2_0.5b_refcoco_qlora.py``.
The LLM defaults to Qwen2-0.5B-Instruct (``llm_path``); a leaf using another LLM sets
``llm_path`` and the three fields that read it (``model.llm``, ``model.tokenizer``,
``train_dataloader.dataset.tokenizer``), see ``configs/llm_wrapper/llm_wrapper_llama3_8b_refcoco.py``.
"""
import torch
from mmengine.dataset import DefaultSampler
from mmengine.optim import LinearLR, OptimWrapper
from mmengine.runner import EpochBasedTrainLoop
from peft import LoraConfig
from torch.optim import AdamW
from transformers import AutoModelForCausalLM, AutoTokenizer

from llmvision.datasets.rec import JsonCandidateSource, RECSelectorDataset
from llmvision.models.selectors import BoxListPromptSerializer, RECSelector

# ---------------------------------------------------------------- settings
llm_path = 'checkpoints/Qwen2-0.5B-Instruct'
data_root = 'data/refcoco'
candidates = 'work_dirs/rec_candidates/refcoco_{split}.jsonl'
max_prompt_tokens = 1024
lr = 1e-5
batch_size = 4

tokenizer = dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=llm_path)
serializer = dict(type=BoxListPromptSerializer, box_format='xyxy', with_scores=False)

# ---------------------------------------------------------------- model
model = dict(
    type=RECSelector,
    llm=dict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path=llm_path,
             dtype=torch.bfloat16),
    tokenizer=tokenizer,
    lora=dict(type=LoraConfig, r=128, lora_alpha=256, lora_dropout=0.1, task_type='CAUSAL_LM',
              target_modules=['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj',
                              'down_proj', 'lm_head']),
    serializer=serializer,
    max_prompt_tokens=max_prompt_tokens,
    overlength='truncate',
    max_new_tokens=4,
    answer_eos=False)  # released: the SFT text is prompt + index, no EOS

# ---------------------------------------------------------------- data
train_dataloader = dict(
    batch_size=batch_size,
    num_workers=2,
    sampler=dict(type=DefaultSampler, shuffle=True),
    dataset=dict(
        type=RECSelectorDataset, data_root=data_root, dataset='refcoco', split_by='unc',
        split='train', img_prefix='data/coco/train2014',
        candidate_sources=[dict(type=JsonCandidateSource,
                                path=candidates.replace('{split}', 'train'),
                                name='grounding_dino', missing='empty')],
        serializer=serializer, tokenizer=tokenizer, iou_thr=0.5, inclusive=False,
        num_shuffles='released', max_tokens=max_prompt_tokens))

# ---------------------------------------------------------------- schedule
optim_wrapper = dict(type=OptimWrapper, optimizer=dict(type=AdamW, lr=lr, weight_decay=0.0),
                     clip_grad=dict(max_norm=1.0))
param_scheduler = [dict(type=LinearLR, start_factor=1.0, end_factor=0.0, by_epoch=True, begin=0, end=1,
                        convert_to_iter_based=True)]
train_cfg = dict(type=EpochBasedTrainLoop, max_epochs=1)
# evaluation: tools/rec_eval.py (detector-only / zero-shot / fine-tuned / oracle tables)
