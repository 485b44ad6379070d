"""Grounding-DINO outputs -> pixel boxes: entity scores, top-k over (query x entity), rescaling."""
import torch
from mmengine.structures import InstanceData

from llmvision.structures import clip_xyxy, denormalize_cxcywh_to_xyxy


def entity_scores(token_logits: torch.Tensor, entity_maps: torch.Tensor) -> torch.Tensor:
    """``token_logits [Q, T]`` and multi-hot ``entity_maps [E, T']`` -> ``[Q, E]`` scores.

    The score of an entity is the mean of the sigmoid token probabilities over its tokens.
    """
    probs = token_logits.sigmoid()
    t = min(probs.shape[-1], entity_maps.shape[-1])
    maps = (entity_maps[:, :t] > 0).to(probs.dtype)
    return probs[:, :t] @ maps.t() / maps.sum(-1).clamp(min=1)[None]


def boxes_to_original(boxes: torch.Tensor, metainfo: dict) -> torch.Tensor:
    """Normalized cxcywh ``[K, 4]`` (relative to ``img_shape``) -> pixel xyxy in ``ori_shape``."""
    img_shape = metainfo['img_shape'][:2]
    xyxy = clip_xyxy(denormalize_cxcywh_to_xyxy(boxes, img_shape), img_shape)
    scale = metainfo.get('scale_factor')
    if scale is None and 'ori_shape' in metainfo:
        oh, ow = metainfo['ori_shape'][:2]
        scale = (img_shape[1] / ow, img_shape[0] / oh)
    if scale is not None:
        xyxy = xyxy / xyxy.new_tensor([scale[0], scale[1], scale[0], scale[1]])
    return xyxy


def predict_instances(token_logits: torch.Tensor, boxes: torch.Tensor, entity_maps: torch.Tensor,
                      metainfo: dict, max_per_img: int = 300, label_offset: int = 0,
                      top1: bool = False) -> InstanceData:
    """One image: ``token_logits [Q, T]``, ``boxes [Q, 4]`` sigmoid cxcywh -> InstanceData with
    ``bboxes [K, 4]`` pixel xyxy (original image), ``scores [K]``, ``labels [K]`` (entity index +
    ``label_offset``) and ``query_index [K]``. ``top1`` keeps the single best box (REC)."""
    scores = entity_scores(token_logits, entity_maps)  # [Q, E]
    num_entities = scores.shape[1]
    k = 1 if top1 else min(max_per_img, scores.numel())
    top, idx = scores.flatten().topk(k)
    labels = idx % num_entities
    query = idx // num_entities
    out = InstanceData()
    out.bboxes = boxes_to_original(boxes[query], metainfo)
    out.scores = top
    out.labels = labels + label_offset
    out.query_index = query
    return out
