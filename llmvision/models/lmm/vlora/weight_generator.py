"""VLoRA perceptual weights generator: image features -> per-image low-rank factors of the LLM's weights.

Layout follows the released VLoRA code (``LoRAGenerater``, ``weights_sep=True``) so its ``mm_projector.bin``
converts key for key (:mod:`llmvision.checkpoint.vlora`):

- ``visual_proj`` ``Linear(C_v, d)`` and a learned position embedding ``pos_embed [1, P, d]`` turn the vision
  features ``[N, P, C_v]`` into the generator's memory ``[N, P, d]`` (the released code has one of each, shared
  by the five stacks; everything after it is per weight type);
- per weight type ``t`` in ``'qkvom'`` its own stack (:class:`WeightTypeStack`): ``k`` learned queries
  ``[1, k, d]``, ``depth`` pre-LN decoder blocks (self-attention over the queries, cross-attention to the
  memory, FFN x4 GELU), a final LayerNorm and one ``Linear(d, in_t * r)`` shared by the ``k`` queries: query
  ``j`` becomes ``A [N, in_t, r]`` of LLM layer ``layer_ids[j]``;
- static (input-independent) ``B`` per (type, layer), ``lora_B[t] [k, out_t, r]``, zero-initialised so the
  LLM is unchanged at step 0, applied with the scale ``alpha / r``.

The ``k`` queries map to the LLM layers ``l`` with ``(l + 1) % skip == 0`` (VLoRA-7B: skip 4 -> layers
3, 7, ..., 31 of 32, k = 8). ``in_t``/``out_t`` are the input/output sizes of the target projection, so
``k``/``v`` factors are sized to the (grouped-query) k/v projections: ``out_k = num_kv_heads * head_dim``.
"""
from dataclasses import dataclass
from typing import Dict, Sequence, Tuple

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModule
from mmengine.model.weight_init import constant_init, trunc_normal_init

from llmvision.registry import MODELS

WEIGHT_TYPES = 'qkvom'


def mapped_layers(num_llm_layers: int, skip: int) -> Tuple[int, ...]:
    """LLM layers that receive perceptual weights: ``l`` with ``(l + 1) % skip == 0`` (32, 4 -> 3, 7, ..., 31)."""
    if skip < 1 or skip > num_llm_layers:
        raise ValueError(f'skip must be in [1, {num_llm_layers}] (the LLM has {num_llm_layers} layers), got {skip}')
    return tuple(layer for layer in range(num_llm_layers) if (layer + 1) % skip == 0)


@dataclass
class PerceptualWeights:
    """The generator's output for one batch: the factors of every (type, mapped layer).

    Attributes:
        layer_ids: LLM layer of each query slot ``j`` (length ``k``).
        A: per type ``[B, k, in_t, r]`` (per sample; zero rows for text-only samples).
        B: per type ``[k, out_t, r]``, already multiplied by ``alpha / r``.
    The delta of slot ``j`` on input ``x [B, T, in_t]`` is ``(x @ A[t][:, j]) @ B[t][j].T  -> [B, T, out_t]``.
    """
    layer_ids: Tuple[int, ...]
    A: Dict[str, torch.Tensor]
    B: Dict[str, torch.Tensor]

    @property
    def batch_size(self) -> int:
        return next(iter(self.A.values())).shape[0]

    def tensors(self) -> Tuple[torch.Tensor, ...]:
        """Flat ``(A_q, B_q, A_k, B_k, ...)`` in a fixed type order (checkpoint inputs)."""
        return tuple(t for key in sorted(self.A) for t in (self.A[key], self.B[key]))

    def with_tensors(self, tensors: Sequence[torch.Tensor]) -> 'PerceptualWeights':
        """The same structure over ``tensors`` in the order of :meth:`tensors`."""
        keys = sorted(self.A)
        return PerceptualWeights(self.layer_ids, {k: tensors[2 * i] for i, k in enumerate(keys)},
                                 {k: tensors[2 * i + 1] for i, k in enumerate(keys)})

    def select(self, sample_mask: torch.Tensor) -> 'PerceptualWeights':
        """Zero the factors ``A`` of samples where ``sample_mask [B]`` is False (text-only samples)."""
        m = sample_mask.to(next(iter(self.A.values())).dtype).view(-1, 1, 1, 1)
        return PerceptualWeights(self.layer_ids, {k: a * m for k, a in self.A.items()}, dict(self.B))


class GeneratorBlock(nn.Module):
    """Pre-LN decoder block of the generator (names as the released ``TransformerDecoderLayer``).

    ``queries [N, k, d]`` -> self-attention over the queries, cross-attention to ``memory [N, P, d]`` (keys and
    values are the memory as is), FFN ``d -> mlp_ratio * d -> d`` with GELU; each with a residual.
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.multihead_attn = nn.MultiheadAttention(dim, num_heads, batch_first=True)
        self.linear1 = nn.Linear(dim, dim * mlp_ratio)
        self.linear2 = nn.Linear(dim * mlp_ratio, dim)
        self.norm1 = nn.LayerNorm(dim)
        self.norm2 = nn.LayerNorm(dim)
        self.norm3 = nn.LayerNorm(dim)

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        q = self.norm1(queries)
        queries = queries + self.self_attn(q, q, q, need_weights=False)[0]
        q = self.norm2(queries)
        queries = queries + self.multihead_attn(q, memory, memory, need_weights=False)[0]
        return queries + self.linear2(F.gelu(self.linear1(self.norm3(queries))))


class WeightTypeStack(nn.Module):
    """One weight type's generator (released ``WeightsGenerater``): queries -> blocks -> LayerNorm -> head.

    ``memory [N, P, d]`` -> ``[N, k, in_features * rank]`` (one row per query, i.e. per mapped LLM layer).
    """

    def __init__(self, dim: int, depth: int, num_queries: int, in_features: int, rank: int,
                 num_heads: int, mlp_ratio: int = 4):
        super().__init__()
        self.queries = nn.Parameter(torch.randn(1, num_queries, dim))
        self.decoders = nn.ModuleList(GeneratorBlock(dim, num_heads, mlp_ratio) for _ in range(depth))
        self.norm = nn.LayerNorm(dim)
        self.weights_head = nn.Linear(dim, in_features * rank)

    def forward(self, memory: torch.Tensor) -> torch.Tensor:
        queries = self.queries.expand(memory.shape[0], -1, -1)
        for block in self.decoders:
            queries = block(queries, memory)
        return self.weights_head(self.norm(queries))


def _released_init(module: nn.Module):
    """The released initialisation: Linear weights trunc-normal(0.02), biases 0, LayerNorm (1, 0);
    queries / position embedding stay ``randn``; the attention in-projections keep PyTorch's xavier init."""
    if isinstance(module, nn.Linear):
        trunc_normal_init(module, std=0.02, bias=0)
    elif isinstance(module, nn.LayerNorm):
        constant_init(module, 1, bias=0)


@MODELS.register_module()
class PerceptualWeightsGenerator(BaseModule):
    """Turns vision features into :class:`PerceptualWeights` (VLoRA).

    Args:
        visual_dim: size ``C_v`` of the vision features (CLIP-L: 1024).
        num_positions: visual tokens per image ``P`` (CLIP-L/336 patch tokens: 576).
        dim: generator width ``d`` (VLoRA-7B: 1024 pre-train, 512 fine-tune).
        depth: decoder blocks per stack (8).
        num_llm_layers: layers of the LLM (32 for Vicuna-7B).
        in_features / out_features: per weight type the input / output size of its target in the LLM
            (``q``: hidden -> heads*head_dim, ``k``/``v``: hidden -> kv_heads*head_dim, ``o``: heads*head_dim ->
            hidden, ``m``: hidden -> hidden, in parallel with the whole MLP).
        rank: LoRA rank ``r`` (64). alpha: LoRA alpha (64): the deltas are scaled by ``alpha / rank``.
        weight_types: which of ``'qkvom'`` get perceptual weights (``'qkvom'``).
        skip: one query per ``skip`` LLM layers, on layers with ``(l + 1) % skip == 0`` (4).
        num_queries: optional check: must equal ``num_llm_layers // skip`` (8).
        num_heads: attention heads of the generator (16). mlp_ratio: FFN width factor (4).
    """

    def __init__(self, visual_dim: int, num_positions: int, dim: int, depth: int, num_llm_layers: int,
                 in_features: Dict[str, int], out_features: Dict[str, int], rank: int = 64, alpha: float = 64,
                 weight_types: str = WEIGHT_TYPES, skip: int = 4, num_queries: int = None, num_heads: int = 16,
                 mlp_ratio: int = 4, init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        bad = set(weight_types) - set(WEIGHT_TYPES)
        if bad or not weight_types or len(set(weight_types)) != len(weight_types):
            raise ValueError(f'weight_types must be distinct letters of {WEIGHT_TYPES!r}, got {weight_types!r}')
        missing = [t for t in weight_types if t not in in_features or t not in out_features]
        if missing:
            raise ValueError(f'in_features/out_features lack the weight types {missing}')
        self.layer_ids = mapped_layers(num_llm_layers, skip)
        k = len(self.layer_ids)
        if num_queries is not None and num_queries != k:
            raise ValueError(f'num_queries={num_queries} but {num_llm_layers} LLM layers with skip={skip} map to '
                             f'{k} layers {self.layer_ids}: one query per mapped layer')
        self.weight_types = weight_types
        self.rank = rank
        self.scale = alpha / rank
        self.in_features = {t: int(in_features[t]) for t in weight_types}
        self.out_features = {t: int(out_features[t]) for t in weight_types}
        self.visual_proj = nn.Linear(visual_dim, dim)
        self.pos_embed = nn.Parameter(torch.randn(1, num_positions, dim))
        self.gen = nn.ModuleDict({t: WeightTypeStack(dim, depth, k, self.in_features[t], rank, num_heads, mlp_ratio)
                                  for t in weight_types})
        self.apply(_released_init)
        self.lora_B = nn.ParameterDict({t: nn.Parameter(torch.zeros(k, self.out_features[t], rank))
                                        for t in weight_types})

    @property
    def num_queries(self) -> int:
        return len(self.layer_ids)

    def forward(self, visual_feats: torch.Tensor) -> PerceptualWeights:
        """``visual_feats [N, P, C_v]`` -> :class:`PerceptualWeights` with ``A[t] [N, k, in_t, r]``,
        ``B[t] [k, out_t, r]`` (scaled by ``alpha / r``)."""
        if visual_feats.shape[1] != self.pos_embed.shape[1]:
            raise ValueError(f'the generator was built for {self.pos_embed.shape[1]} visual tokens per image, '
                             f'got {visual_feats.shape[1]} (features {tuple(visual_feats.shape)})')
        memory = self.visual_proj(visual_feats) + self.pos_embed
        n, k = visual_feats.shape[0], self.num_queries
        A = {t: self.gen[t](memory).view(n, k, self.in_features[t], self.rank) for t in self.weight_types}
        B = {t: self.lora_B[t] * self.scale for t in self.weight_types}
        return PerceptualWeights(self.layer_ids, A, B)
