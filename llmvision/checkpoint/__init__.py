"""Checkpoint converters: HF mm-grounding-dino / mmdet LLMDet .pth -> llmvision GroundingDINO."""
from .hf_grounding_dino import convert_hf_grounding_dino
from .load import convert_state_dict, detect_format, load_grounding_dino_checkpoint, read_state_dict
from .mmdet_grounding_dino import convert_mmdet_grounding_dino
from .report import ConversionReport, load_converted

__all__ = ['convert_hf_grounding_dino', 'convert_mmdet_grounding_dino', 'convert_state_dict',
           'detect_format', 'load_grounding_dino_checkpoint', 'read_state_dict', 'ConversionReport',
           'load_converted']
