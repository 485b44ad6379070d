"""Checkpoint converters: HF mm-grounding-dino / mmdet LLMDet .pth -> llmvision GroundingDINO."""
from .hf_grounding_dino import convert_hf_grounding_dino
from .report import ConversionReport, load_converted

__all__ = ['convert_hf_grounding_dino', 'ConversionReport', 'load_converted']
