"""LLM-wrapper REC selector as released: Llama-3-8B-Instruct in 4-bit NF4 (QLoRA) + LoRA on RefCOCO.

Same recipe as ``llm_wrapper_llama3_8b_refcoco.py`` (``configs/_base_/models/llm_wrapper_refcoco.py``);
only the base LLM differs: ``llmvision.utils.hf_builder.quantized_causal_lm`` loads it with
``BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4', bnb_4bit_use_double_quant=True,
bnb_4bit_compute_dtype=bfloat16)`` and applies peft's ``prepare_model_for_kbit_training``, as
LLM-wrapper v1.0.0 fine-tunes. The LoRA adapters (r 128 / alpha 256 / dropout 0.1, + lm_head) train
in bf16 on top of the frozen 4-bit base.

Needs a CUDA GPU and ``pip install bitsandbytes`` (not a dependency of llmvision); without them,
building the model stops with an error saying which one is missing. The full-precision base (the
switch back): ``llm_wrapper_llama3_8b_refcoco.py``. Another LLM: set ``llm_path`` and the same
four fields as that file (e.g. ``checkpoints/Qwen2-0.5B-Instruct``).

Train: python tools/train.py configs/llm_wrapper/llm_wrapper_llama3_8b_refcoco_qlora.py
"""
from mmengine.config import read_base

with read_base():
    from .llm_wrapper_llama3_8b_refcoco import *  # noqa: F401,F403

from llmvision.utils.hf_builder import quantized_causal_lm

model['llm'] = dict(type=quantized_causal_lm, pretrained_model_name_or_path=llm_path,  # noqa: F405
                    bits=4, quant_type='nf4', double_quant=True, compute_dtype='bfloat16',
                    prepare_for_kbit_training=True)
