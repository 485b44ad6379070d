"""Vision towers of the multimodal LLMs: build one from a config (tiny runs), optionally with pre-trained
weights from a checkpoint of ours, and read its patch features.

* :func:`vision_model_from_config` - a transformers ``CLIPVisionModel`` / ``SiglipVisionModel`` from its config,
  seeded, optionally with a pixel stem (:mod:`.pixel_stem`) and weights from ``checkpoint`` (e.g. the
  :class:`~llmvision.models.lmm.patch_tagger.PatchTagPretrainer` run that pre-trains the tiny tower).
* :func:`tower_features` - ``[N, 3, S, S]`` -> hidden states of one layer ``[N, V, C]`` (CLS dropped or kept,
  :func:`resolve_vision_select`).

Real towers come pretrained from a local folder (``CLIPVisionModel.from_pretrained``); see the LLaVA configs.
"""
import os

import torch
import torch.nn as nn

from llmvision.utils.hf_builder import build_object


def vision_model_from_config(config, dtype=None, seed=None, pixel_stem=None, checkpoint=None,
                             checkpoint_prefix: str = 'vision_encoder.'):
    """Vision tower (``CLIPVisionModel`` / ``SiglipVisionModel``) from a transformers config or
    ``dict(type=CLIPVisionConfig, ...)`` (tests, tiny runs); ``seed`` as in ``causal_lm_from_config``.

    Args:
        pixel_stem: 1x1-conv widths of a :class:`~llmvision.models.lmm.pixel_stem.PixelStemPatchEmbedding` in
            place of the linear patch projection (tiny towers trained from scratch; see that module).
        checkpoint: a ``.pth`` (mmengine ``state_dict``) / ``.bin`` / ``.safetensors`` whose keys under
            ``checkpoint_prefix`` are this tower's (``vision_encoder.`` for a checkpoint of
            :class:`PatchTagPretrainer` or :class:`LLaVAModel`; ``''`` for a bare tower state dict); loaded
            strictly (a ``KeyError`` with the key report when anything is off).
    """
    from transformers import CLIPVisionConfig, CLIPVisionModel, SiglipVisionConfig, SiglipVisionModel
    config = build_object(config)
    classes = {CLIPVisionConfig: CLIPVisionModel, SiglipVisionConfig: SiglipVisionModel}
    cls = classes.get(type(config))
    if cls is None:
        raise TypeError(f'vision_model_from_config: want CLIPVisionConfig or SiglipVisionConfig, got '
                        f'{type(config).__name__}')

    def build():
        model = cls(config)
        if pixel_stem is not None:
            from .pixel_stem import add_pixel_stem
            add_pixel_stem(model, pixel_stem)
        return model

    if seed is None:
        model = build()
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = build()
    if checkpoint is not None:
        load_tower_checkpoint(model, checkpoint, checkpoint_prefix)
    return model if dtype is None else model.to(dtype)


def load_tower_checkpoint(tower: nn.Module, checkpoint, prefix: str = 'vision_encoder.') -> None:
    """Load the keys of ``checkpoint`` (a path or a state dict) under ``prefix`` into ``tower``, the prefix removed,
    strictly: a ``KeyError`` naming the file and the missing / unexpected / mis-shaped keys when the tower does not
    match (e.g. a pixel stem in the file but not in the config)."""
    source = 'the given state dict'
    if isinstance(checkpoint, (str, os.PathLike)):
        source = os.fspath(checkpoint)
        if not os.path.exists(source):
            raise FileNotFoundError(
                f'vision tower checkpoint {source!r} does not exist: train the tower first (the tiny synthetic '
                'towers: python tools/train.py configs/llava/tiny_vision_pretrain_synthetic.py) or set '
                'model.vision_encoder.checkpoint=None for a randomly initialised tower')
        # mmengine's loader (weights-only unpickling with llmvision's allow-list, see llmvision.utils.compat)
        from mmengine.runner.checkpoint import _load_checkpoint
        checkpoint = _load_checkpoint(source, map_location='cpu')
    sd = checkpoint.get('state_dict', checkpoint) if isinstance(checkpoint, dict) else checkpoint
    part = {k[len(prefix):]: v for k, v in sd.items() if k.startswith(prefix)}
    if not part:
        raise KeyError(f'{source}: no keys under {prefix!r}; first keys: {list(sd)[:5]}')
    own = tower.state_dict()
    missing = sorted(set(own) - set(part))
    unexpected = sorted(set(part) - set(own))
    shapes = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in part.items()
              if k in own and tuple(v.shape) != tuple(own[k].shape)]
    if missing or unexpected or shapes:
        raise KeyError(f'{source} (keys under {prefix!r}) does not match the vision tower: missing {missing[:10]}, '
                       f'unexpected {unexpected[:10]}, shape mismatch (key, file, tower) {shapes[:10]}')
    tower.load_state_dict(part)


def vision_hidden_size(enc: nn.Module) -> int:
    """The tower's feature width ``C`` (``enc.config.hidden_size``)."""
    size = getattr(getattr(enc, 'config', None), 'hidden_size', None)
    if size is None:
        raise ValueError(f'cannot read hidden_size from the vision encoder {type(enc).__name__}.config')
    return int(size)


def has_cls_token(enc: nn.Module) -> bool:
    """Whether the tower prepends a CLS token (CLIP yes, SigLIP no)."""
    emb = getattr(getattr(enc, 'vision_model', enc), 'embeddings', None)
    return getattr(emb, 'class_embedding', None) is not None


def check_vision_select(select: str) -> str:
    """``select`` if it is ``'auto'``, ``'default'`` or ``'full'``; a ``ValueError`` otherwise."""
    if select not in ('auto', 'default', 'full'):
        raise ValueError(f"vision_select must be 'auto', 'default' or 'full', got {select!r}")
    return select


def resolve_vision_select(enc: nn.Module, select: str) -> str:
    """``'auto'`` -> ``'default'`` (drop the CLS token) when the tower has one, else ``'full'``; other values as
    given (checked by :func:`check_vision_select`)."""
    if check_vision_select(select) == 'auto':
        return 'default' if has_cls_token(enc) else 'full'
    return select


def tower_features(enc: nn.Module, pixel_values: torch.Tensor, layer: int = -2,
                   select: str = 'default') -> torch.Tensor:
    """``pixel_values [N, 3, S, S]`` -> ``hidden_states[layer]`` ``[N, V, C]``: patch tokens only for
    ``select='default'`` (CLS dropped), every token for ``'full'``. No graph through a frozen tower."""
    dtype = next(enc.parameters()).dtype
    trainable = any(p.requires_grad for p in enc.parameters())
    with torch.set_grad_enabled(torch.is_grad_enabled() and trainable):
        out = enc(pixel_values=pixel_values.to(dtype), output_hidden_states=True)
    feats = out.hidden_states[layer]
    return feats[:, 1:] if select == 'default' else feats
