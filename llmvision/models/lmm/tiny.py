"""Configs of a tiny random LLaVA (CLIP tower of 1-2 layers, Qwen2 / LLaMA of 2 layers) for tests and
smoke configs. Public helpers: :func:`tiny_clip_vision_cfg`, :func:`tiny_llava_cfg`."""
from llmvision.models.llm.tiny import tiny_llama_llm_cfg, tiny_qwen2_llm_cfg


def tiny_clip_vision_cfg(image_size: int = 28, patch_size: int = 14, hidden_size: int = 32,
                         intermediate_size: int = 64, num_hidden_layers: int = 2, num_attention_heads: int = 4,
                         seed=None, **config_kwargs) -> dict:
    """``dict(type=vision_model_from_config, config=CLIPVisionConfig(...))``: ``(image_size / patch_size) ** 2``
    patch tokens per image (4 at the defaults). Extra ``config_kwargs`` go to ``CLIPVisionConfig``."""
    from transformers import CLIPVisionConfig

    from .vision_tower import vision_model_from_config
    config = CLIPVisionConfig(image_size=image_size, patch_size=patch_size, hidden_size=hidden_size,
                              intermediate_size=intermediate_size, num_hidden_layers=num_hidden_layers,
                              num_attention_heads=num_attention_heads, **config_kwargs)
    return dict(type=vision_model_from_config, config=config, seed=seed)


def tiny_llava_cfg(vocab_size: int, llm: str = 'qwen2', tokenizer=None, hidden_size: int = 64,
                   num_hidden_layers: int = 2, vision: dict = None, **overrides) -> dict:
    """A full :class:`LLaVAModel` config with a tiny random CLIP tower and LLM (``llm='qwen2'`` or ``'llama'``).

    Args:
        vocab_size: LLM vocabulary (``len(tokenizer)``).
        tokenizer: passed through (needed for ``predict``).
        vision: overrides of :func:`tiny_clip_vision_cfg`.
        overrides: any other ``LLaVAModel`` argument.
    """
    from .llava import LLaVAModel
    builders = dict(qwen2=tiny_qwen2_llm_cfg, llama=tiny_llama_llm_cfg)
    if llm not in builders:
        raise ValueError(f"llm must be one of {sorted(builders)}, got {llm!r}")
    cfg = dict(type=LLaVAModel, vision_encoder=tiny_clip_vision_cfg(**(vision or {})),
               llm=builders[llm](vocab_size, hidden_size=hidden_size, intermediate_size=2 * hidden_size,
                                 num_hidden_layers=num_hidden_layers),
               tokenizer=tokenizer)
    cfg.update(overrides)
    return cfg
