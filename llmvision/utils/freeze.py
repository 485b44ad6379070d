"""Build a model with only some of its parameters trainable (``requires_grad``), from a config.

A training stage that trains a few modules of a bigger model (LLMDet's stage 1: only the image
projector, with the detector, BERT and the LLM frozen) wraps the model config::

    model = dict(type=build_partly_frozen, model=dict(type=LLMDet, ...),
                 trainable=('captioner.image_tokenizer',))

The parameters are frozen when the model is built, so the runner's optimizer and DDP wrapper see
the final trainable set; the returned object is the model itself (checkpoint keys are unchanged).
"""
from typing import Sequence

import torch.nn as nn
from mmengine.logging import print_log

from llmvision.registry import MODELS


def build_partly_frozen(model, trainable: Sequence[str]) -> nn.Module:
    """Build ``model`` (config dict or module) and freeze every parameter outside ``trainable``.

    Args:
        model: a model config (``dict(type=..., ...)``, built with ``MODELS``) or a built module.
        trainable: parameter-name prefixes that stay trainable (module paths such as
            ``'captioner.image_tokenizer'``; a prefix matches the name itself or ``prefix + '.'``).
            Parameters already frozen by the model (a frozen LLM base) stay frozen.

    Raises:
        ValueError: ``trainable`` is empty, or a prefix names no parameter (a typo would otherwise
            freeze everything silently), or no trainable parameter is left.
    """
    prefixes = tuple(trainable) if not isinstance(trainable, str) else (trainable,)
    if not prefixes:
        raise ValueError('build_partly_frozen: give at least one trainable prefix')
    module = MODELS.build(model) if isinstance(model, dict) else model

    def matches(name: str, prefix: str) -> bool:
        return name == prefix or name.startswith(prefix + '.')

    names = [n for n, _ in module.named_parameters()]
    unknown = [p for p in prefixes if not any(matches(n, p) for n in names)]
    if unknown:
        raise ValueError(f'build_partly_frozen: no parameter of {type(module).__name__} starts with '
                         f'{unknown}; top-level modules: {sorted({n.split(".")[0] for n in names})}')
    for name, param in module.named_parameters():
        if not any(matches(name, p) for p in prefixes):
            param.requires_grad_(False)
    left = sum(p.numel() for p in module.parameters() if p.requires_grad)
    if left == 0:
        raise ValueError(f'build_partly_frozen: the prefixes {list(prefixes)} leave no trainable parameter')
    total = sum(p.numel() for p in module.parameters())
    print_log(f'build_partly_frozen: {left:,} of {total:,} parameters trainable ({list(prefixes)})',
              logger='current')
    return module
