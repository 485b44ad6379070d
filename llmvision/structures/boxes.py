"""The one place that converts box formats.

Inside models boxes are normalized ``cxcywh`` in [0, 1]; at the API boundary (datasets,
predictions, metrics) they are pixel ``xyxy``. All functions accept ``[..., 4]`` tensors.
"""
import torch
from torchvision.ops import box_iou as _tv_box_iou
from torchvision.ops import generalized_box_iou as _tv_giou


def xyxy_to_cxcywh(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` xyxy -> ``[..., 4]`` cxcywh."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack(((x1 + x2) / 2, (y1 + y2) / 2, x2 - x1, y2 - y1), dim=-1)


def cxcywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """``[..., 4]`` cxcywh -> ``[..., 4]`` xyxy."""
    cx, cy, w, h = boxes.unbind(-1)
    return torch.stack((cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2), dim=-1)


def xywh_to_xyxy(boxes: torch.Tensor) -> torch.Tensor:
    """COCO ``[..., 4]`` xywh (top-left, size) -> xyxy."""
    x, y, w, h = boxes.unbind(-1)
    return torch.stack((x, y, x + w, y + h), dim=-1)


def xyxy_to_xywh(boxes: torch.Tensor) -> torch.Tensor:
    """xyxy -> COCO ``[..., 4]`` xywh (top-left, size)."""
    x1, y1, x2, y2 = boxes.unbind(-1)
    return torch.stack((x1, y1, x2 - x1, y2 - y1), dim=-1)


def _wh_factor(img_hw, like: torch.Tensor) -> torch.Tensor:
    h, w = float(img_hw[0]), float(img_hw[1])
    return like.new_tensor([w, h, w, h])


def normalize_xyxy_to_cxcywh(boxes: torch.Tensor, img_hw) -> torch.Tensor:
    """Pixel xyxy ``[N, 4]`` in an image of size ``img_hw=(H, W)`` -> normalized cxcywh."""
    return xyxy_to_cxcywh(boxes / _wh_factor(img_hw, boxes))


def denormalize_cxcywh_to_xyxy(boxes: torch.Tensor, img_hw) -> torch.Tensor:
    """Normalized cxcywh ``[N, 4]`` -> pixel xyxy in an image of size ``img_hw=(H, W)``."""
    return cxcywh_to_xyxy(boxes) * _wh_factor(img_hw, boxes)


def box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """IoU of xyxy boxes ``[N, 4]`` x ``[M, 4]`` -> ``[N, M]``."""
    return _tv_box_iou(boxes1, boxes2)


def generalized_box_iou(boxes1: torch.Tensor, boxes2: torch.Tensor) -> torch.Tensor:
    """GIoU of xyxy boxes ``[N, 4]`` x ``[M, 4]`` -> ``[N, M]``."""
    return _tv_giou(boxes1, boxes2)


def clip_xyxy(boxes: torch.Tensor, img_hw) -> torch.Tensor:
    """Clip pixel xyxy boxes ``[N, 4]`` to an image of size ``img_hw=(H, W)``."""
    h, w = float(img_hw[0]), float(img_hw[1])
    out = boxes.clone()
    out[..., 0::2] = out[..., 0::2].clamp(0, w)
    out[..., 1::2] = out[..., 1::2].clamp(0, h)
    return out
