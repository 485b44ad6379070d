from .grounding_dino import GroundingDINO
from .llmdet import LLMDet, memory_to_levels
from .outputs import DetectorOutputs
from .postprocess import boxes_to_original, entity_scores, predict_instances

__all__ = ['GroundingDINO', 'LLMDet', 'DetectorOutputs', 'memory_to_levels', 'boxes_to_original', 'entity_scores',
           'predict_instances']
