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


def quantized_causal_lm(pretrained_model_name_or_path: str, bits: int = 4, quant_type: str = 'nf4',
                        double_quant: bool = True, compute_dtype: str = 'bfloat16',
                        prepare_for_kbit_training: bool = True, **kwargs):
    """A 4-bit (QLoRA) / 8-bit causal LM from a local folder, as LLM-wrapper fine-tunes its base.

    ``transformers.BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type='nf4',
    bnb_4bit_use_double_quant=True, bnb_4bit_compute_dtype=bfloat16)`` then peft's
    ``prepare_model_for_kbit_training`` (the released recipe). Needs CUDA and the ``bitsandbytes``
    package; without them a clear error says so before anything is loaded.

    Args:
        pretrained_model_name_or_path: local model folder (never downloaded).
        bits: 4 (NF4 / FP4) or 8.
        quant_type: ``'nf4'`` or ``'fp4'`` (4 bits only).
        double_quant: quantise the quantisation constants too.
        compute_dtype: dtype of the matmuls (``'bfloat16'``, ``'float16'``, ``'float32'``).
        prepare_for_kbit_training: cast norms to fp32 and enable input gradients (peft).
        **kwargs: passed to ``AutoModelForCausalLM.from_pretrained`` (``attn_implementation``, ...).
    """
    import importlib.util

    import torch
    if bits not in (4, 8):
        raise ValueError(f'quantized_causal_lm: bits must be 4 or 8, got {bits}')
    if quant_type not in ('nf4', 'fp4'):
        raise ValueError(f"quantized_causal_lm: quant_type must be 'nf4' or 'fp4', got {quant_type!r}")
    if not torch.cuda.is_available():
        raise RuntimeError('quantized_causal_lm: 4/8-bit (bitsandbytes) models need a CUDA GPU; none is '
                           'visible. Use the full-precision config (type=AutoModelForCausalLM.from_pretrained).')
    if importlib.util.find_spec('bitsandbytes') is None:
        raise ImportError('quantized_causal_lm: the bitsandbytes package is not installed: '
                          '`pip install bitsandbytes` (needed for QLoRA / 8-bit bases).')
    from transformers import AutoModelForCausalLM, BitsAndBytesConfig
    if bits == 4:
        quant = BitsAndBytesConfig(load_in_4bit=True, bnb_4bit_quant_type=quant_type,
                                   bnb_4bit_use_double_quant=double_quant,
                                   bnb_4bit_compute_dtype=getattr(torch, compute_dtype))
    else:
        quant = BitsAndBytesConfig(load_in_8bit=True)
    model = build_object(dict(type=AutoModelForCausalLM.from_pretrained,
                              pretrained_model_name_or_path=pretrained_model_name_or_path,
                              quantization_config=quant, **kwargs))
    if prepare_for_kbit_training:
        from peft import prepare_model_for_kbit_training
        model = prepare_model_for_kbit_training(model)
    return model
