"""Candidate source for tools/rec_candidates.py: our Grounding-DINO / LLMDet on each expression.

Object detection over the expression's noun phrases (nltk chunks if its tagger data is installed,
else the whole expression) + grounding of the whole expression, boxes with score >= 0.3, at most
10 per run. Set ``detector_config`` / ``checkpoint`` to the detector you evaluate.
"""
from mmengine.config import Config

from llmvision.apis.detector_candidates import DetectorCandidateSource

detector_config = 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'
checkpoint = None  # e.g. 'checkpoints/llmdet_swin_t_llmvision.pth'

candidate_source = dict(
    type=DetectorCandidateSource,
    detector=Config.fromfile(detector_config).model,
    checkpoint=checkpoint,
    name='grounding_dino',
    score_thr=0.3,
    max_per_prompt=10,
    detection=True,
    grounding=True)
