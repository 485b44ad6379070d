"""REC selector (LLM-wrapper): candidate sources, prompt serializer, answer parser, model."""
from .accuracy import (best_candidate, iou_passes, oracle_box, rec_accuracy,
                       top_candidate_box)
from .answer_parser import fallback_choice, parse_answer
from .candidates import CandidateSet, clip_candidates
from .evaluation_table import accuracy_table, detector_only, format_table, llm_selector, oracle
from ..hf_builder import build_object, causal_lm_from_config
from .rec_selector import RECSelector
from .serializer import BoxListPromptSerializer, SerializedPrompt

__all__ = ['CandidateSet', 'clip_candidates', 'BoxListPromptSerializer', 'SerializedPrompt',
           'parse_answer', 'fallback_choice', 'RECSelector', 'build_object',
           'causal_lm_from_config', 'best_candidate', 'iou_passes', 'oracle_box', 'rec_accuracy',
           'top_candidate_box', 'accuracy_table', 'detector_only', 'format_table', 'llm_selector',
           'oracle']
