from .grounding_dino import GroundingDINO
from .postprocess import boxes_to_original, entity_scores, predict_instances

__all__ = ['GroundingDINO', 'boxes_to_original', 'entity_scores', 'predict_instances']
