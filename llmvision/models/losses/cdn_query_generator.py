"""Contrastive denoising (CDN) queries of DINO, built from the ground truth of a batch.

Layout of the ``Ndn = 2 * G * M`` denoising queries of every image (``M`` = most gts of any image in
the batch, ``G`` = number of groups): group ``g`` owns ``[2gM, 2(g+1)M)``; its first ``M`` slots are
positive queries (gt ``t`` at ``2gM + t``, box corners moved by less than ``box_noise_scale * wh/2``),
the next ``M`` slots negative queries (gt ``t`` at ``(2g+1)M + t``, corners moved by between
``1x`` and ``2x`` that amount). Slots beyond an image's own gt count are zero padding. The decoder
sees ``[dn queries ; matching queries]``; ``attn_mask`` keeps groups apart and hides every
denoising query from the matching queries.
"""
from typing import Dict, List, Optional, Tuple

import torch
import torch.nn as nn

from llmvision.registry import MODELS
from llmvision.structures.boxes import cxcywh_to_xyxy, xyxy_to_cxcywh


def _inverse_sigmoid(x: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """``log(x / (1 - x))`` with both terms clamped to ``>= eps`` (x clamped to [0, 1])."""
    x = x.clamp(0, 1)
    return torch.log(x.clamp(min=eps) / (1 - x).clamp(min=eps))


@MODELS.register_module()
class CdnQueryGenerator(nn.Module):
    """Generate noised label/box queries and the self-attention mask for DINO denoising.

    Args:
        num_classes: size of the label embedding (grounding: the max text length, 256); gt labels
            must lie in ``[0, num_classes)``.
        embed_dims: query width ``C``.
        num_matching_queries: ``Q``, number of ordinary (Hungarian-matched) queries.
        label_noise_scale: each label is replaced by a uniform random one with probability
            ``label_noise_scale * 0.5`` (the new label may equal the old one).
        box_noise_scale: corner noise relative to the box size (see module docstring).
        group_cfg: ``dict(dynamic=True, num_dn_queries=100)`` -> ``G = max(1, num_dn_queries // M)``;
            ``dict(dynamic=False, num_groups=G)`` -> fixed ``G``.
    """

    def __init__(self, num_classes: int, embed_dims: int, num_matching_queries: int,
                 label_noise_scale: float = 0.5, box_noise_scale: float = 1.0,
                 group_cfg: Optional[dict] = None):
        super().__init__()
        self.num_classes = int(num_classes)
        self.embed_dims = int(embed_dims)
        self.num_matching_queries = int(num_matching_queries)
        self.label_noise_scale = float(label_noise_scale)
        self.box_noise_scale = float(box_noise_scale)
        group_cfg = dict(group_cfg or {})
        self.dynamic_groups = bool(group_cfg.get('dynamic', True))
        if self.dynamic_groups:
            num_dn = group_cfg.get('num_dn_queries')
            self.num_dn_queries = 100 if num_dn is None else int(num_dn)
            if self.num_dn_queries < 1:
                raise ValueError(f'CdnQueryGenerator: group_cfg.num_dn_queries must be >= 1, '
                                 f'got {self.num_dn_queries}')
        else:
            if group_cfg.get('num_groups') is None:
                raise ValueError('CdnQueryGenerator: group_cfg.num_groups is required when '
                                 'group_cfg.dynamic is False')
            self.num_groups = int(group_cfg['num_groups'])
            if self.num_groups < 1:
                raise ValueError(f'CdnQueryGenerator: group_cfg.num_groups must be >= 1, '
                                 f'got {self.num_groups}')
        self.label_embedding = nn.Embedding(self.num_classes, self.embed_dims)

    def get_num_groups(self, max_num_target: int) -> int:
        """Number of denoising groups ``G`` for a batch whose largest image has ``max_num_target`` gts."""
        if not self.dynamic_groups:
            return self.num_groups
        if max_num_target == 0:
            return 1
        return max(1, self.num_dn_queries // max_num_target)

    def _collect(self, batch_gt: List[dict]) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Pad the batch: boxes ``[B, M, 4]`` cxcywh, labels ``[B, M]`` long, valid ``[B, M]`` bool."""
        if len(batch_gt) == 0:
            raise ValueError('CdnQueryGenerator: batch_gt is empty (need one dict per image)')
        device = self.label_embedding.weight.device
        boxes_list, labels_list = [], []
        for i, gt in enumerate(batch_gt):
            for key in ('bboxes', 'labels'):
                if key not in gt:
                    raise KeyError(f'CdnQueryGenerator: batch_gt[{i}] has no key {key!r} '
                                   f'(keys: {sorted(gt)})')
            boxes, labels = gt['bboxes'], gt['labels']
            if boxes.dim() != 2 or boxes.shape[-1] != 4 or labels.dim() != 1 \
                    or labels.shape[0] != boxes.shape[0]:
                raise ValueError(f'CdnQueryGenerator: batch_gt[{i}] needs bboxes [n, 4] and labels [n]; '
                                 f'got {tuple(boxes.shape)} and {tuple(labels.shape)}')
            if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
                raise ValueError(f'CdnQueryGenerator: batch_gt[{i}]["labels"] must lie in '
                                 f'[0, {self.num_classes}), got min {int(labels.min())} '
                                 f'max {int(labels.max())}')
            boxes_list.append(boxes.to(device=device, dtype=torch.float32))
            labels_list.append(labels.to(device=device, dtype=torch.long))
        batch_size = len(batch_gt)
        max_num = max(b.shape[0] for b in boxes_list)
        boxes = torch.zeros(batch_size, max_num, 4, device=device)
        labels = torch.zeros(batch_size, max_num, dtype=torch.long, device=device)
        valid = torch.zeros(batch_size, max_num, dtype=torch.bool, device=device)
        for i, (b, lab) in enumerate(zip(boxes_list, labels_list)):
            boxes[i, :b.shape[0]] = b
            labels[i, :b.shape[0]] = lab
            valid[i, :b.shape[0]] = True
        return boxes, labels, valid

    def _noisy_labels(self, labels: torch.Tensor) -> torch.Tensor:
        """``[B, 2G, M]`` labels -> same shape with a ``label_noise_scale/2`` share replaced at random."""
        flip = torch.rand(labels.shape, device=labels.device) < self.label_noise_scale * 0.5
        random_labels = torch.randint_like(labels, 0, self.num_classes)
        return torch.where(flip, random_labels, labels)

    def _noisy_boxes(self, boxes: torch.Tensor) -> torch.Tensor:
        """``[B, 2G, M, 4]`` cxcywh (odd blocks negative) -> noised cxcywh clamped to the image."""
        xyxy = cxcywh_to_xyxy(boxes)
        half_wh = boxes[..., 2:].repeat(1, 1, 1, 2) * 0.5
        magnitude = torch.rand_like(xyxy)  # positives: [0, 1)
        magnitude[:, 1::2] += 1.0  # negatives: [1, 2)
        sign = torch.randint_like(xyxy, 0, 2) * 2.0 - 1.0
        noisy = xyxy + sign * magnitude * half_wh * self.box_noise_scale
        return xyxy_to_cxcywh(noisy.clamp(0.0, 1.0))

    def generate_attn_mask(self, max_num_target: int, num_groups: int,
                           device: torch.device) -> torch.Tensor:
        """``[Ndn + Q, Ndn + Q]`` bool, True = blocked. Query order: ``[dn ; matching]``."""
        num_dn = 2 * max_num_target * num_groups
        total = num_dn + self.num_matching_queries
        mask = torch.zeros(total, total, dtype=torch.bool, device=device)
        if num_dn == 0:
            return mask
        group = torch.arange(num_dn, device=device) // (2 * max_num_target)
        mask[:num_dn, :num_dn] = group[:, None] != group[None, :]
        mask[num_dn:, :num_dn] = True
        return mask

    def forward(self, batch_gt: List[dict]
                ) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, Dict[str, int]]:
        """Build the denoising queries of one batch.

        Args:
            batch_gt: per image ``dict(bboxes=[n, 4] normalized cxcywh, labels=[n] long)``; ``n`` may be 0.

        Returns:
            ``dn_label_query [B, Ndn, C]``, ``dn_bbox_query [B, Ndn, 4]`` (inverse sigmoid of noised
            cxcywh), ``attn_mask [Ndn + Q, Ndn + Q]`` bool (True = blocked) and
            ``dn_meta = dict(num_denoising_queries=Ndn, num_denoising_groups=G)``. When no image has a
            gt, ``Ndn = 0`` (the label query is still an output of the embedding, so its weight stays in
            the autograd graph).
        """
        boxes, labels, valid = self._collect(batch_gt)
        batch_size, max_num = labels.shape
        num_groups = self.get_num_groups(max_num)
        num_dn = 2 * num_groups * max_num
        blocks = 2 * num_groups
        labels = labels[:, None].expand(batch_size, blocks, max_num)
        boxes = boxes[:, None].expand(batch_size, blocks, max_num, 4)
        valid = valid[:, None].expand(batch_size, blocks, max_num).reshape(batch_size, num_dn)

        noisy_labels = self._noisy_labels(labels).reshape(batch_size, num_dn)
        label_query = self.label_embedding(noisy_labels) * valid[..., None]
        if max_num == 0:
            bbox_query = boxes.new_zeros(batch_size, 0, 4)
        else:
            noisy_boxes = self._noisy_boxes(boxes).reshape(batch_size, num_dn, 4)
            bbox_query = _inverse_sigmoid(noisy_boxes) * valid[..., None]
        attn_mask = self.generate_attn_mask(max_num, num_groups, labels.device)
        dn_meta = dict(num_denoising_queries=int(num_dn), num_denoising_groups=int(num_groups))
        return label_query, bbox_query, attn_mask, dn_meta
