"""Grounding-DINO training heads: focal loss, Hungarian matcher, denoising queries, losses."""
from .cdn_query_generator import CdnQueryGenerator
from .focal_loss import sigmoid_focal_loss
from .grounding_dino_loss import GroundingDINOLoss
from .hungarian_matcher import HungarianMatcher

__all__ = ['CdnQueryGenerator', 'GroundingDINOLoss', 'HungarianMatcher', 'sigmoid_focal_loss']
