"""Grounding-DINO training losses and what they need: focal loss, Hungarian matcher, denoising queries."""
from .cdn_query_generator import CdnQueryGenerator
from .focal_loss import sigmoid_focal_loss
from .grounding_dino_loss import GroundingDINOLoss
from .hungarian_matcher import HungarianMatcher

__all__ = ['CdnQueryGenerator', 'GroundingDINOLoss', 'HungarianMatcher', 'sigmoid_focal_loss']
