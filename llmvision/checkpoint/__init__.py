"""Checkpoint converters: HF mm-grounding-dino / mmdet LLMDet .pth -> llmvision GroundingDINO; a released LLMDet
.pth -> our LLMDet whole (detector + captioner) and its pre-aligned projector into both projectors; transformers
``llava-hf`` folders / original LLaVA pieces -> LLaVAModel."""
from .hf_grounding_dino import convert_hf_grounding_dino
from .llava_hf import convert_llava_hf
from .llava_load import convert_llava_state_dict, detect_llava_format, load_llava_checkpoint, read_checkpoint
from .llava_original import convert_llava_original
from .llmdet import (
    LLMDetConversionReport,
    convert_llmdet,
    convert_llmdet_projector,
    load_llmdet_checkpoint,
    load_llmdet_projector,
)
from .load import convert_state_dict, detect_format, load_grounding_dino_checkpoint, read_state_dict
from .mmdet_grounding_dino import convert_mmdet_grounding_dino
from .report import ConversionReport, load_converted

__all__ = ['convert_hf_grounding_dino', 'convert_mmdet_grounding_dino', 'convert_state_dict',
           'detect_format', 'load_grounding_dino_checkpoint', 'read_state_dict', 'ConversionReport',
           'load_converted', 'convert_llava_hf', 'convert_llava_original', 'convert_llava_state_dict',
           'detect_llava_format', 'load_llava_checkpoint', 'read_checkpoint', 'convert_llmdet',
           'load_llmdet_checkpoint', 'convert_llmdet_projector', 'load_llmdet_projector', 'LLMDetConversionReport']
