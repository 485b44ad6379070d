"""REC selector (LLM-wrapper): candidate sources, prompt serializer, answer parser, model."""
from .answer_parser import fallback_choice, parse_answer
from .candidates import CandidateSet, clip_candidates
from .llm_builder import build_object, causal_lm_from_config
from .rec_selector import RECSelector
from .serializer import BoxListPromptSerializer, SerializedPrompt

__all__ = ['CandidateSet', 'clip_candidates', 'BoxListPromptSerializer', 'SerializedPrompt',
           'parse_answer', 'fallback_choice', 'RECSelector', 'build_object',
           'causal_lm_from_config']
