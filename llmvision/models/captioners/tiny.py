"""Config of a tiny captioner (random 4-layer Qwen2, small LoRA) for tests and smoke configs.

The tiny LLM / LoRA helpers it uses live in :mod:`llmvision.models.llm.tiny`.
"""
from llmvision.models.llm.tiny import lora_cfg, tiny_qwen2_llm_cfg


def tiny_captioner_cfg(tokenizer, **overrides) -> dict:
    """A full ``LLMCaptioner`` config around a tiny Qwen2 for the tokenizer (a directory or object).

    Defaults keep it fast: ``image_token_sizes=(3, 4)`` (26 tokens), LoRA r=8, short answers.
    Any ``LLMCaptioner`` argument can be overridden.
    """
    from llmvision.models.llm.tokenizer import load_tokenizer

    from .llm_captioner import LLMCaptioner
    tok = load_tokenizer(tokenizer)
    cfg = dict(type=LLMCaptioner, llm=tiny_qwen2_llm_cfg(len(tok)), tokenizer=tok, lora=lora_cfg(),
               feat_dims=256, image_token_sizes=(3, 4), max_image_caption_len=64,
               max_region_caption_len=16, max_regions=16)
    cfg.update(overrides)
    return cfg
