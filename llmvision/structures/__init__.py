from .boxes import (
    box_iou,
    clip_xyxy,
    cxcywh_to_xyxy,
    denormalize_cxcywh_to_xyxy,
    generalized_box_iou,
    normalize_xyxy_to_cxcywh,
    xywh_to_xyxy,
    xyxy_to_cxcywh,
    xyxy_to_xywh,
)
from .candidates import CandidateSet, clip_candidates, fallback_choice
from .data_sample import DetDataSample
from .lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LMMDataSample

__all__ = ['box_iou', 'clip_xyxy', 'cxcywh_to_xyxy', 'denormalize_cxcywh_to_xyxy',
           'generalized_box_iou', 'normalize_xyxy_to_cxcywh', 'xywh_to_xyxy', 'xyxy_to_cxcywh',
           'xyxy_to_xywh', 'DetDataSample', 'CandidateSet', 'clip_candidates', 'fallback_choice',
           'IGNORE_INDEX', 'IMAGE_TOKEN_INDEX', 'LMMDataSample']
