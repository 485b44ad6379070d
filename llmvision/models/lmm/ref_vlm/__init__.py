"""REF-VLM: the LLM writes ``<Phrase>concept</Phrase>(<Unit>box</Unit>[0]<REF>...)`` triplets and the hidden
state at each ``<REF>`` is a query of that unit's visual decoder (box, keypoint)."""
from .grammar import (
           DEFAULT_UNITS,
           ParsedAnswer,
           RefGrammarError,
           Triplet,
           parse_answer,
           serialize_answer,
           serialize_triplet,
)
from .tokens import REF_TOKEN, REF_VLM_TOKENS, add_ref_tokens

__all__ = ['DEFAULT_UNITS', 'ParsedAnswer', 'RefGrammarError', 'Triplet', 'parse_answer', 'serialize_answer',
           'serialize_triplet', 'REF_TOKEN', 'REF_VLM_TOKENS', 'add_ref_tokens']
