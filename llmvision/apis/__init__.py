"""Public inference API (used by tools/image_demo.py and tests)."""
from llmvision.utils.noun_phrases import first_noun_phrase, nltk_available, noun_phrases, phrase_spans
from llmvision.visualization import color_for, draw_detections

from .chat import chat, chat_batch, init_lmm
from .detector_candidates import DetectorCandidateSource
from .inference import build_test_pipeline, inference_detector, init_detector, make_prompt, parse_category_prompt
from .rec_selection import llm_selector

__all__ = ['color_for', 'draw_detections', 'build_test_pipeline', 'inference_detector',
           'init_detector', 'make_prompt', 'parse_category_prompt', 'first_noun_phrase',
           'nltk_available', 'noun_phrases', 'phrase_spans', 'llm_selector', 'DetectorCandidateSource',
           'init_lmm', 'chat', 'chat_batch']
