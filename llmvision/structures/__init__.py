from .boxes import (box_iou, clip_xyxy, cxcywh_to_xyxy, denormalize_cxcywh_to_xyxy,
                    generalized_box_iou, normalize_xyxy_to_cxcywh, xywh_to_xyxy, xyxy_to_cxcywh,
                    xyxy_to_xywh)
from .data_sample import DetDataSample

__all__ = ['box_iou', 'clip_xyxy', 'cxcywh_to_xyxy', 'denormalize_cxcywh_to_xyxy',
           'generalized_box_iou', 'normalize_xyxy_to_cxcywh', 'xywh_to_xyxy', 'xyxy_to_cxcywh',
           'xyxy_to_xywh', 'DetDataSample']
