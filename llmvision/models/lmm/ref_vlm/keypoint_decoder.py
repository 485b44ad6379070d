"""Keypoint decoder of REF-VLM: each ``<REF>`` expands to 1 box query + K keypoint queries.

Content of the ``1 + K`` queries of a ``<REF>``: its projected state plus a learned part embedding (box,
keypoint 0..K-1); positions: the learned slot embedding of the ``<REF>``. One DETR decoder runs over all
``Q * (1 + K)`` queries of a sample. Heads: box MLP on the box query (cxcywh), keypoint MLP (x, y, sigmoid,
normalized to the model input) and a visibility logit on each keypoint query. With ``anchor='pointer'`` the box
query's pointer picks a memory cell and the box centre and every keypoint are offsets from it
(:mod:`.pointer_anchor`).
Losses: box L1 x5 + GIoU x2, keypoint L1 x2 + OKS x2 + visibility x1 (per layer, matched inside each
phrase's group by the box cost).
"""
from typing import Dict, List, Sequence, Union

import torch
from torch import nn

from llmvision.models.layers.mlp import MLP
from llmvision.registry import MODELS

from .box_decoder import RefQueryDecoderBase
from .box_loss import gather_matched
from .keypoint_loss import keypoint_loss_terms
from .pointer_anchor import anchored
from .ref_queries import RefQueries


@MODELS.register_module()
class RefKeypointDecoder(RefQueryDecoderBase):
    """``<REF>`` states -> a box and ``num_keypoints`` keypoints each.

    Args:
        num_keypoints: ``K`` keypoint queries per ``<REF>``.
        sigmas: OKS sigma per keypoint (a float for all).
        kpt_l1_weight, oks_weight, vis_weight: keypoint loss weights (REF-VLM: 2, 2, 1).
        other arguments: :class:`RefQueryDecoderBase`.
    """

    def __init__(self, llm_dim: int, in_channels: Sequence[int], num_keypoints: int = 17,
                 sigmas: Union[float, Sequence[float]] = 0.05, kpt_l1_weight: float = 2.0, oks_weight: float = 2.0,
                 vis_weight: float = 1.0, **kwargs):
        super().__init__(llm_dim, in_channels, **kwargs)
        d = self.query_pos.embedding_dim
        self.num_keypoints = int(num_keypoints)
        self.part_embed = nn.Embedding(1 + self.num_keypoints, d)
        self.kpt_head = MLP(d, d, 2, 3)
        self.vis_head = nn.Linear(d, 1)
        if self.pointer is not None:  # keypoints start on their anchors
            nn.init.zeros_(self.kpt_head.layers[-1].weight)
            nn.init.zeros_(self.kpt_head.layers[-1].bias)
        s = torch.full((self.num_keypoints,), float(sigmas)) if isinstance(sigmas, (int, float)) \
            else torch.as_tensor(list(sigmas), dtype=torch.float32)
        if s.numel() != self.num_keypoints:
            raise ValueError(f'RefKeypointDecoder: {s.numel()} sigmas for {self.num_keypoints} keypoints')
        self.register_buffer('sigmas', s, persistent=False)
        self.kpt_l1_weight, self.oks_weight, self.vis_weight = kpt_l1_weight, oks_weight, vis_weight

    def forward(self, queries: RefQueries, maps: List[torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Returns ``boxes [layers, B_u, Q, 4]``, ``keypoints [layers, B_u, Q, K, 2]``,
        ``visibility [layers, B_u, Q, K]`` (logits), with ``anchor='pointer'`` also the box queries'
        :meth:`pointer_outputs`."""
        b, q, _ = queries.states.shape
        self._check(q)
        k1 = 1 + self.num_keypoints
        memory, memory_pos, shapes = self.visual_memory(maps, queries.sample_index)
        content = self.ref_proj(queries.states.to(memory.dtype))[:, :, None] + self.part_embed.weight
        pos = self.query_pos.weight[:q][None, :, None].expand(b, q, k1, -1)
        pad = queries.padding_mask[:, :, None].expand(b, q, k1)
        hidden = self.decoder(content.flatten(1, 2), pos.flatten(1, 2), memory, memory_pos, pad.flatten(1, 2))
        hidden = hidden.unflatten(2, (q, k1))  # [layers, B, Q, 1 + K, D]
        # the box query's pointer anchors the box and the keypoints (offsets from the same cell)
        pointer = self.pointer_outputs(content[:, :, 0] + pos[:, :, 0], memory, memory_pos, shapes, queries)
        if pointer:
            kpts = anchored(self.kpt_head(hidden[:, :, :, 1:] + pointer['cell_features'][:, :, None]),
                            pointer['anchors'][:, :, None])
        else:
            kpts = self.kpt_head(hidden[:, :, :, 1:]).sigmoid()
        return {**pointer, 'boxes': self.boxes(hidden[:, :, :, 0], pointer), 'keypoints': kpts,
                'visibility': self.vis_head(hidden[:, :, :, 1:]).squeeze(-1)}

    def loss(self, outputs: Dict[str, torch.Tensor], queries: RefQueries) -> Dict[str, torch.Tensor]:
        """Unweighted terms plus ``'box'`` (L1 x5 + GIoU x2) and ``'keypoint'`` (L1 x2 + OKS x2 + vis x1)."""
        if queries.keypoints is None:
            raise ValueError('RefKeypointDecoder.loss: the queries carry no keypoint targets')

        def keypoint_terms(lid, assign, boxes):
            return keypoint_loss_terms(outputs['keypoints'][lid], outputs['visibility'][lid],
                                       gather_matched(queries.keypoints, assign), boxes, queries.valid, self.sigmas)

        terms = self.matched_losses(outputs, queries, keypoint_terms)
        terms['keypoint'] = (self.kpt_l1_weight * terms['kpt_l1'] + self.oks_weight * terms['kpt_oks']
                             + self.vis_weight * terms['kpt_vis'])
        return terms

    @staticmethod
    def predictions(outputs: Dict[str, torch.Tensor]) -> Dict[str, torch.Tensor]:
        """Last layer: ``boxes [B_u, Q, 4]``, ``keypoints [B_u, Q, K, 2]``, ``visibility [B_u, Q, K]`` (prob)."""
        return {'boxes': outputs['boxes'][-1], 'keypoints': outputs['keypoints'][-1],
                'visibility': outputs['visibility'][-1].sigmoid()}
