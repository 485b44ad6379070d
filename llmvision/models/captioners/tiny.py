"""Configs of a tiny captioner (random 4-layer Qwen2, small LoRA) for tests and smoke configs."""
from typing import Sequence


LORA_TARGETS = ('q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj')


def tiny_qwen2_llm_cfg(vocab_size: int, hidden_size: int = 64, intermediate_size: int = 128,
                       num_hidden_layers: int = 4, num_attention_heads: int = 4,
                       num_key_value_heads: int = 2, initializer_range: float = 0.02) -> dict:
    """``dict(type=AutoModelForCausalLM.from_config, config=Qwen2Config(...))`` with random weights.

    With the default ``initializer_range`` a frozen random ``lm_head`` behind the final RMSNorm can only
    produce logits of about +-1, so a fit test cannot get far below ``log(vocab)``; use ~0.2 there.
    """
    from transformers import AutoModelForCausalLM, Qwen2Config
    config = Qwen2Config(hidden_size=hidden_size, intermediate_size=intermediate_size,
                         num_hidden_layers=num_hidden_layers, num_attention_heads=num_attention_heads,
                         num_key_value_heads=num_key_value_heads, vocab_size=vocab_size,
                         initializer_range=initializer_range, tie_word_embeddings=False)
    return dict(type=AutoModelForCausalLM.from_config, config=config)


def lora_cfg(r: int = 8, lora_alpha: int = 16, lora_dropout: float = 0.0,
             target_modules: Sequence[str] = LORA_TARGETS) -> dict:
    """``dict(type=LoraConfig, ...)`` on all attention and MLP projections (LLMDet: r=128, alpha=256)."""
    from peft import LoraConfig
    return dict(type=LoraConfig, r=r, lora_alpha=lora_alpha, lora_dropout=lora_dropout,
                target_modules=list(target_modules))


def tiny_captioner_cfg(tokenizer, **overrides) -> dict:
    """A full ``LLMCaptioner`` config around a tiny Qwen2 for the tokenizer (a directory or object).

    Defaults keep it fast: ``image_token_sizes=(3, 4)`` (26 tokens), LoRA r=8, short answers.
    Any ``LLMCaptioner`` argument can be overridden.
    """
    from .llm_captioner import LLMCaptioner, _build_tokenizer
    tok = _build_tokenizer(tokenizer)
    cfg = dict(type=LLMCaptioner, llm=tiny_qwen2_llm_cfg(len(tok)), tokenizer=tok, lora=lora_cfg(),
               feat_dims=256, image_token_sizes=(3, 4), max_image_caption_len=64,
               max_region_caption_len=16, max_regions=16)
    cfg.update(overrides)
    return cfg
