"""Configs of tiny random causal LMs and LoRA for tests and smoke configs (public helpers).

Each ``tiny_*_llm_cfg`` returns ``dict(type=AutoModelForCausalLM.from_config, config=<transformers config>)``,
which :func:`llmvision.utils.hf_builder.build_object` turns into a randomly initialised model; pass
``vocab_size=len(tokenizer)`` so the tokenizer's ids fit. :func:`lora_cfg` returns ``dict(type=LoraConfig, ...)``.
"""
from typing import Sequence

LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


def tiny_qwen2_llm_cfg(vocab_size: int, hidden_size: int = 64, intermediate_size: int = 128,
                       num_hidden_layers: int = 4, num_attention_heads: int = 4,
                       num_key_value_heads: int = 2, initializer_range: float = 0.02, **config_kwargs) -> dict:
    """Random Qwen2 causal LM (untied ``lm_head``; grouped-query attention with 2 KV heads).

    With the default ``initializer_range`` a frozen random ``lm_head`` behind the final RMSNorm can only
    produce logits of about +-1, so a fit test cannot get far below ``log(vocab)``; use ~0.2 there.
    Extra ``config_kwargs`` go to ``Qwen2Config``.
    """
    from transformers import AutoModelForCausalLM, Qwen2Config
    config = Qwen2Config(hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                         num_key_value_heads=num_key_value_heads, vocab_size=vocab_size,
                         initializer_range=initializer_range, tie_word_embeddings=False, **config_kwargs)
    return dict(type=AutoModelForCausalLM.from_config, config=config)


def tiny_llama_llm_cfg(vocab_size: int, hidden_size: int = 64, intermediate_size: int = 128,
                       num_hidden_layers: int = 2, num_attention_heads: int = 4,
                       num_key_value_heads: int = 4, initializer_range: float = 0.02, **config_kwargs) -> dict:
    """Random LLaMA causal LM (the LLaVA-1.5 / Vicuna architecture). Extra ``config_kwargs`` go to ``LlamaConfig``."""
    from transformers import AutoModelForCausalLM, LlamaConfig
    config = LlamaConfig(hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                         num_key_value_heads=num_key_value_heads, vocab_size=vocab_size,
                         initializer_range=initializer_range, tie_word_embeddings=False, **config_kwargs)
    return dict(type=AutoModelForCausalLM.from_config, config=config)


def lora_cfg(r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0,
             target_modules: Sequence[str] = LORA_TARGETS) -> dict:
    """``dict(type=LoraConfig, ...)`` on all attention and MLP projections (LLMDet: r=128, alpha=256)."""
    from peft import LoraConfig
    return dict(type=LoraConfig, r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                target_modules=list(target_modules))
