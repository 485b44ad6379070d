"""LLM captioner (LLMDet co-training): projectors, image/region visual tokens, chat prompts, peft LoRA,
optional deformable cross-attention adapters inside the LLM."""
from .caption_prompt import IGNORE_INDEX, CaptionPrompt
from .image_tokens import ImageTokenizer, grid_cell_boxes
from .llava_onevision import qwen2_from_llava_onevision
from .llm_captioner import LLMCaptioner
from .projector import VisualProjector, released_projector_state
from .region_cross_attn import RegionCrossAttentionAdapter, RegionCrossAttentionBlock
from .sine_embedding import box_sine_embedding
from .tiny import tiny_captioner_cfg

__all__ = ['LLMCaptioner', 'CaptionPrompt', 'IGNORE_INDEX', 'ImageTokenizer', 'grid_cell_boxes',
           'VisualProjector', 'RegionCrossAttentionAdapter', 'RegionCrossAttentionBlock', 'box_sine_embedding',
           'tiny_captioner_cfg', 'qwen2_from_llava_onevision', 'released_projector_state']
