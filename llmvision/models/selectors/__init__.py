"""REC selector (LLM-wrapper): prompt serializer, answer parser, model.

Candidate sets live in :mod:`llmvision.structures.candidates`, the accuracy and the table in
:mod:`llmvision.evaluation` (``rec_accuracy``, ``accuracy_table``).
"""
from .answer_parser import parse_answer
from .rec_selector import RECSelector
from .serializer import BoxListPromptSerializer, SerializedPrompt

__all__ = ['BoxListPromptSerializer', 'SerializedPrompt', 'parse_answer', 'RECSelector']
