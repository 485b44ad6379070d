"""Multimodal LLMs (LLaVA base; VLoRA, LLaVolta, REF-VLM build on it). Import list only."""
from .compression_presets import compression_stages
from .compressor import PooledKVCache, VisualTokenCompressor, compression_ratio
from .data_preprocessor import CLIP_MEAN, CLIP_STD, SIGLIP_MEAN, SIGLIP_STD, LMMDataPreprocessor
from .llava import LLaVAModel, LLMOutput, LMMBatch
from .patch_tagger import PatchTagPretrainer
from .projector import LLaVAProjector
from .ref_vlm import RefBoxDecoder, RefKeypointDecoder, RefVisualFeatures, REFVLMModel
from .tiny import tiny_clip_vision_cfg, tiny_llava_cfg
from .vision_tower import vision_model_from_config
from .vlora import PerceptualWeights, PerceptualWeightsGenerator, VLoRAModel

__all__ = ['CLIP_MEAN', 'CLIP_STD', 'SIGLIP_MEAN', 'SIGLIP_STD', 'LMMDataPreprocessor', 'LLaVAModel', 'LLMOutput',
           'LMMBatch', 'vision_model_from_config', 'LLaVAProjector', 'PatchTagPretrainer', 'tiny_clip_vision_cfg',
           'tiny_llava_cfg']
