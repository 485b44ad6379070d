"""REF-VLM: the LLM writes ``<Phrase>concept</Phrase>(<Unit>box</Unit>[0]<REF>...)`` triplets and the hidden
state at each ``<REF>`` is a query of that unit's visual decoder (box, keypoint)."""
from .box_decoder import RefBoxDecoder
from .grammar import (
           DEFAULT_UNITS,
           ParsedAnswer,
           RefGrammarError,
           Triplet,
           parse_answer,
           serialize_answer,
           serialize_triplet,
)
from .keypoint_decoder import RefKeypointDecoder
from .model import REFVLMModel
from .tokens import REF_TOKEN, REF_VLM_TOKENS, add_ref_tokens, load_ref_vlm_tokenizer
from .visual_features import RefVisualFeatures

__all__ = ['DEFAULT_UNITS', 'ParsedAnswer', 'RefGrammarError', 'Triplet', 'parse_answer', 'serialize_answer',
           'serialize_triplet', 'REF_TOKEN', 'REF_VLM_TOKENS', 'add_ref_tokens', 'load_ref_vlm_tokenizer',
           'RefBoxDecoder', 'RefKeypointDecoder', 'REFVLMModel', 'RefVisualFeatures']
