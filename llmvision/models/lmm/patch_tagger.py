"""Pre-train a vision tower from scratch with dense tags: each patch token says which categories it holds.

The tiny multimodal LLMs of the synthetic VQA set stand in for LLaVA, whose CLIP tower comes pretrained and
stays frozen. Trained from scratch through the LLM instead, the tiny tower collapsed (its features became the
same for every image within a few hundred steps, measured in benchmarks/RESULTS.md) and a frozen random tower
is too weak (a probe reads the number of objects at 41%, const 22%). This model is the missing pre-training,
on the same synthetic scenes: patch token ``v`` of the chosen layer predicts, through one linear layer, the
multi-hot set of categories whose box centre lies in patch ``v``'s cell (sigmoid + BCE with ``pos_weight``).
Its checkpoint's ``vision_encoder.*`` keys are then loaded into the LLaVA tower
(``vision_model_from_config(checkpoint=...)``), frozen, as CLIP is.

Modes: ``loss`` -> ``{'loss_tag'}`` (+ ``tag_precision`` / ``tag_recall`` at 0.5, logged only); ``predict`` ->
the data samples with ``pred_tag_scores [V, K]`` (sigmoid) and ``gt_tags [V, K]``; ``tensor`` -> logits
``[N, V, K]``.
"""
import math
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F
from mmengine.model import BaseModel

from llmvision.registry import MODELS
from llmvision.utils.hf_builder import build_object

from .data_preprocessor import LMMDataPreprocessor
from .vision_tower import has_cls_token, resolve_vision_select, tower_features, vision_hidden_size


def patch_tag_targets(boxes: torch.Tensor, labels: torch.Tensor, grid: int, image_size: int,
                      num_classes: int) -> torch.Tensor:
    """Multi-hot ``[grid * grid, K]``: cell ``(row, col)`` (row-major, the ViT's patch order) holds label ``k``
    when a box of label ``k`` has its centre in that cell. ``boxes [B, 4]`` xyxy pixels of the ``image_size``
    square; centres on the far border go to the last cell."""
    out = torch.zeros(grid * grid, num_classes)
    if boxes.numel():
        cell = image_size / grid
        cx = ((boxes[:, 0] + boxes[:, 2]) / 2 / cell).floor().long().clamp(0, grid - 1)
        cy = ((boxes[:, 1] + boxes[:, 3]) / 2 / cell).floor().long().clamp(0, grid - 1)
        out[cy * grid + cx, labels.long()] = 1.0
    return out


@MODELS.register_module()
class PatchTagPretrainer(BaseModel):
    """Vision tower + linear tag head, trained on :class:`~llmvision.datasets.patch_tags.PatchTagDataset`.

    Args:
        vision_encoder: config of the tower (as :class:`LLaVAModel`'s, e.g. ``vision_model_from_config``).
        num_classes: number of tags ``K`` (the label map's size).
        vision_feature_layer: hidden-states index the head reads: the one the LLaVA model will read (-2).
        vision_select: ``'auto'`` (drop CLS where the tower has one), ``'default'`` or ``'full'``; the head needs
            patch tokens only, so a CLS token must be dropped.
        pos_weight: BCE weight of the positive tags (few of the ``V * K`` targets are positive).
    """

    def __init__(self, vision_encoder, num_classes: int, vision_feature_layer: int = -2, vision_select: str = 'auto',
                 pos_weight: float = 5.0, data_preprocessor=None, init_cfg=None):
        if data_preprocessor is None:
            data_preprocessor = dict(type=LMMDataPreprocessor, check_placeholders=False)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        tower = build_object(vision_encoder)
        if not isinstance(tower, nn.Module):
            raise TypeError(f'PatchTagPretrainer: vision_encoder must build an nn.Module, got {type(tower).__name__}')
        self.vision_encoder = tower
        vision_select = resolve_vision_select(tower, vision_select)
        if vision_select != 'default' and has_cls_token(tower):
            raise ValueError("PatchTagPretrainer tags patch tokens: vision_select must drop the CLS token ('default')")
        self.vision_select = vision_select
        self.vision_feature_layer = int(vision_feature_layer)
        self.num_classes = int(num_classes)
        self.head = nn.Linear(vision_hidden_size(tower), self.num_classes)
        self.register_buffer('pos_weight', torch.tensor(float(pos_weight)), persistent=False)

    def init_weights(self):
        """The tower is initialised (seeded) by its builder; only ``init_cfg`` applies on top."""
        if self.init_cfg:
            super().init_weights()

    def logits(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` -> tag logits ``[N, V, K]``."""
        return self.head(tower_features(self.vision_encoder, pixel_values, self.vision_feature_layer,
                                        self.vision_select))

    def targets(self, data_samples: Sequence, num_tokens: int, image_size: int) -> torch.Tensor:
        """``[N, V, K]`` multi-hot targets of the batch (see :func:`patch_tag_targets`)."""
        grid = math.isqrt(num_tokens)
        if grid * grid != num_tokens:
            raise ValueError(f'PatchTagPretrainer: {num_tokens} patch tokens are not a square grid')
        for ds in data_samples:
            labels = ds.gt_labels
            if labels.numel() and (labels.min() < 0 or labels.max() >= self.num_classes):
                raise ValueError(f'PatchTagPretrainer: label {int(labels.max())} of {ds.metainfo.get("img_path")} '
                                 f'is outside num_classes={self.num_classes}')
        return torch.stack([patch_tag_targets(ds.gt_boxes, ds.gt_labels, grid, image_size, self.num_classes)
                            for ds in data_samples])

    def forward(self, inputs: torch.Tensor, data_samples: Optional[List] = None, mode: str = 'tensor'):
        logits = self.logits(inputs)
        if mode == 'tensor':
            return logits
        if data_samples is None or len(data_samples) != inputs.shape[0]:
            raise ValueError('PatchTagPretrainer: one data sample per image is needed in loss / predict mode')
        target = self.targets(data_samples, logits.shape[1], inputs.shape[-1]).to(logits)
        if mode == 'loss':
            return self.loss(logits, target)
        if mode == 'predict':
            scores = logits.sigmoid().float()
            for ds, s, t in zip(data_samples, scores, target):
                ds.pred_tag_scores = s
                ds.gt_tags = t
            return data_samples
        raise ValueError(f"mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def loss(self, logits: torch.Tensor, target: torch.Tensor) -> Dict[str, torch.Tensor]:
        loss = F.binary_cross_entropy_with_logits(logits.float(), target, pos_weight=self.pos_weight)
        with torch.no_grad():
            pred = logits > 0
            hit = (pred & (target > 0)).sum()
            precision = hit / pred.sum().clamp(min=1)
            recall = hit / (target > 0).sum().clamp(min=1)
        return dict(loss_tag=loss, tag_precision=precision, tag_recall=recall)
