"""VLoRA: vision features become per-image LoRA weights of the LLM (no visual tokens in the sequence)."""
from .model import VLoRAModel
from .side_path import (
    DEFAULT_TARGETS,
    SidePathHandle,
    active_perceptual_weights,
    attach_side_path,
    perceptual_weights_context,
    side_path_delta,
    target_sizes,
)
from .weight_generator import WEIGHT_TYPES, PerceptualWeights, PerceptualWeightsGenerator, mapped_layers

__all__ = ['VLoRAModel', 'DEFAULT_TARGETS', 'SidePathHandle', 'active_perceptual_weights', 'attach_side_path',
           'perceptual_weights_context', 'side_path_delta', 'target_sizes', 'WEIGHT_TYPES', 'PerceptualWeights',
           'PerceptualWeightsGenerator', 'mapped_layers']
