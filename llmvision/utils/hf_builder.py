"""Build third-party (transformers / peft) objects from pure-Python config dicts (LLMs, LoRA,
tokenizers) for the captioner, the REC selector and their configs.

``dict(type=AutoModelForCausalLM.from_pretrained, pretrained_model_name_or_path='checkpoints/x')``
calls the callable with the other keys (not recursively: the callee builds nested configs, so a
model that builds its own sub-modules gets plain dicts); a tiny test model is
``dict(type=causal_lm_from_config, config=dict(type=Qwen2Config, ...))``.
"""
import os

from llmvision.registry import MODELS, TASK_UTILS


def build_object(cfg):
    """Build ``cfg`` (a dict with a callable or registered-name ``type``); anything else
    (a built object, ``None``) passes through unchanged."""
    if not isinstance(cfg, dict) or 'type' not in cfg:
        return cfg
    cfg = dict(cfg)
    fn = cfg.pop('type')
    kwargs = dict(cfg)
    if isinstance(fn, str):
        for registry in (MODELS, TASK_UTILS):
            if registry.get(fn) is not None:
                return registry.build(dict(type=fn, **kwargs))
        raise KeyError(f'{fn!r} is not registered in MODELS or TASK_UTILS')
    if not callable(fn):
        raise TypeError(f'config "type" must be callable or a registered name, got {fn!r}')
    path = kwargs.get('pretrained_model_name_or_path')
    if isinstance(path, str) and getattr(fn, '__name__', '') == 'from_pretrained' \
            and not os.path.isdir(path):
        raise FileNotFoundError(
            f'{getattr(fn, "__qualname__", fn)}: local path {path!r} does not exist: put the model '
            'files (config.json, weights, tokenizer files) there or change the config path '
            '(llmvision never downloads).')
    return fn(**kwargs)


def causal_lm_from_config(config, dtype=None, seed=None):
    """Randomly initialised ``AutoModelForCausalLM`` from a transformers config (tests, tiny runs).

    Args:
        config: a ``PretrainedConfig``, or a dict ``type=Qwen2Config, ...`` built here.
        dtype: optional torch dtype of the parameters.
        seed: optional seed of the initialisation (reproducible weights). It is drawn from a
            forked RNG, so building the LLM does not reset the global torch RNG that the rest
            of the model (built before or after it) initialises from.
    """
    import torch
    from transformers import AutoModelForCausalLM
    config = build_object(config)
    if seed is None:
        model = AutoModelForCausalLM.from_config(config)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = AutoModelForCausalLM.from_config(config)
    return model if dtype is None else model.to(dtype)
