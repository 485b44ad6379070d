"""VLoRA model: a :class:`LLaVAModel` whose images become per-sample LoRA weights instead of visual tokens.

Steps (the LLaVA steps it overrides):

- ``prepare_batch``: the image placeholders are removed from ``input_ids`` / ``labels``, so the LLM sees text
  only (``T`` tokens instead of ``576 + T``); the vision features ``[N, P, C_v]`` go through the
  :class:`PerceptualWeightsGenerator`; a sample's factors ``A`` are the sum over its images (one image: that
  image's), zero for text-only samples. The :class:`PerceptualWeights` ride in ``batch.extra``.
- ``run_llm``: the LLM runs inside :func:`perceptual_weights_context`, so the forward hooks of the side path
  add ``(x A_i) B^T`` to q, k, v, o and the MLP of the mapped layers. Generation calls ``run_llm`` at every
  step with the same batch ``extra``: the factors are computed once per ``predict`` call and reused at each
  decode step (beam rows reuse their sample's factors); the KV cache holds text positions only.

There is no projector: ``projector`` is an ``nn.Identity`` (no parameters), the generator is
``weight_generator`` (checkpoint keys ``weight_generator.*``; :mod:`llmvision.checkpoint.vlora` converts the
released ``mm_projector.bin``).
"""
from dataclasses import replace
from typing import Dict, Optional, Sequence

import torch
import torch.nn as nn

from llmvision.registry import MODELS
from llmvision.structures.lmm_sample import IMAGE_TOKEN_INDEX
from llmvision.utils.hf_builder import build_object

from ..llava import LLaVAModel, LLMOutput, LMMBatch
from ..vision_tower import has_cls_token
from .side_path import attach_side_path, decoder_layers, perceptual_weights_context, target_sizes
from .weight_generator import PerceptualWeights, PerceptualWeightsGenerator

EXTRA_KEY = 'perceptual_weights'


@MODELS.register_module()
class VLoRAModel(LLaVAModel):
    """VLoRA (Ma et al., NeurIPS 2024): vision features -> perceptual LoRA weights of the LLM, no visual tokens.

    Args:
        vision_encoder / llm / tokenizer / vision_feature_layer / vision_select / lora / freeze_* / generation
            settings: as :class:`LLaVAModel`.
        weight_generator: ``dict(type=PerceptualWeightsGenerator, dim=..., depth=..., rank=..., alpha=...,
            skip=..., weight_types=..., num_heads=...)``; ``visual_dim``, ``num_positions``, ``num_llm_layers``,
            ``in_features`` and ``out_features`` are filled in from the vision encoder and the LLM.
        freeze_generator: ``requires_grad=False`` on the generator (both VLoRA stages train it).
        side_path_targets: module paths inside a decoder layer per weight type when the LLM does not use
            ``self_attn.{q,k,v,o}_proj`` / ``mlp`` (see :data:`~.side_path.DEFAULT_TARGETS`).
        kwargs: the other :class:`LLaVAModel` arguments (``projector`` / ``compressor`` must be ``None``: VLoRA
            has neither, so a LLaVA model config turns into a VLoRA one with
            ``model.update(type=VLoRAModel, projector=None, weight_generator=...)``).
    """

    def __init__(self, vision_encoder, llm, weight_generator: dict, freeze_generator: bool = False,
                 side_path_targets: Optional[Dict[str, str]] = None, **kwargs):
        if kwargs.pop('projector', None) is not None or kwargs.get('compressor') is not None:
            raise ValueError('VLoRAModel has no projector and no token compressor (the LLM sees no visual tokens): '
                             'leave projector / compressor unset or None')
        super().__init__(vision_encoder=vision_encoder, llm=llm, projector=nn.Identity(), **kwargs)
        gen_cfg = dict(weight_generator)
        layers = decoder_layers(self.llm)
        weight_types = gen_cfg.get('weight_types', 'qkvom')
        ins, outs = target_sizes(self.llm, 0, weight_types, side_path_targets)
        gen_cfg.setdefault('type', PerceptualWeightsGenerator)
        gen_cfg.setdefault('visual_dim', self.vision_encoder.config.hidden_size)
        gen_cfg.setdefault('num_positions', self._num_visual_tokens())
        gen_cfg.setdefault('num_llm_layers', len(layers))
        gen_cfg.setdefault('in_features', ins)
        gen_cfg.setdefault('out_features', outs)
        self.weight_generator = build_object(gen_cfg)
        self.weight_generator.requires_grad_(not freeze_generator)
        gen = self.weight_generator
        self._side_path = attach_side_path(self.llm, gen.layer_ids, gen.weight_types, side_path_targets)

    def _num_visual_tokens(self) -> int:
        """Tokens per image after ``vision_select`` (CLIP-L/336, ``'default'``: 576)."""
        cfg = self.vision_encoder.config
        tokens = (cfg.image_size // cfg.patch_size) ** 2 + int(has_cls_token(self.vision_encoder))
        return tokens - int(self.vision_select == 'default')

    # ------------------------------------------------------------------ images -> weights
    def perceptual_weights(self, pixel_values: torch.Tensor, image_counts: Sequence[int]) -> PerceptualWeights:
        """``pixel_values [N, 3, S, S]`` of ``B = len(image_counts)`` samples -> factors with ``A[t] [B, k, in, r]``
        (a sample's images summed; zeros for text-only samples)."""
        gen = self.weight_generator
        feats = self.vision_features(pixel_values)
        dtype = gen.visual_proj.weight.dtype
        per_image = gen(feats.to(dtype))
        counts = list(image_counts)
        if all(c == 1 for c in counts):
            return per_image
        owner = torch.repeat_interleave(torch.arange(len(counts)), torch.tensor(counts))
        assign = torch.zeros(len(counts), len(owner), dtype=dtype, device=feats.device)  # [B, N] sample <- image
        assign[owner, torch.arange(len(owner))] = 1
        A = {t: (assign @ a.flatten(1)).view(len(counts), *a.shape[1:]) for t, a in per_image.A.items()}
        return PerceptualWeights(per_image.layer_ids, A, per_image.B)

    def prepare_batch(self, inputs: Optional[torch.Tensor], data_samples: Sequence,
                      padding_side: str = 'right') -> LMMBatch:
        """Text-only token batch (image placeholders removed) with the samples' factors in ``extra``."""
        ids, labels, counts = [], [], []
        for ds in data_samples:
            keep = ds.input_ids != IMAGE_TOKEN_INDEX
            counts.append(int((~keep).sum()))
            ids.append(ds.input_ids[keep])
            labels.append(ds.labels[keep] if 'labels' in ds else None)
        n_pix = 0 if inputs is None else inputs.shape[0]
        if sum(counts) != n_pix:
            raise ValueError(f'VLoRAModel: the batch has {sum(counts)} image placeholders (per sample {counts}) '
                             f'but {n_pix} images')
        batch = self.merge_inputs(ids, labels, None, padding_side)
        extra = dict(batch.extra)
        if n_pix:
            extra[EXTRA_KEY] = self.perceptual_weights(inputs, counts)
        return replace(batch, image_counts=counts, extra=extra)

    # ------------------------------------------------------------------ LLM
    def run_llm(self, batch: LMMBatch, past_key_values=None, use_cache: bool = False) -> LLMOutput:
        """:meth:`LLaVAModel.run_llm` inside the batch's perceptual-weights context."""
        if torch.is_grad_enabled():
            self._side_path.wrap_checkpointing()   # picks up a later gradient_checkpointing_enable()
        with perceptual_weights_context(batch.extra.get(EXTRA_KEY)):
            return super().run_llm(batch, past_key_values=past_key_values, use_cache=use_cache)

    def _unused_parameter_guard(self, batch: LMMBatch) -> torch.Tensor:
        """A text-only batch leaves the generator out of the graph: add zero times its parameters (DDP)."""
        if sum(batch.image_counts):
            return 0.0
        params = [p for m in (self.weight_generator, self.vision_encoder) for p in m.parameters() if p.requires_grad]
        return sum(p.sum() for p in params) * 0.0 if params else 0.0
