"""Candidate source for tools/rec_candidates.py: our Grounding-DINO / LLMDet on each expression.

Object detection over the expression's noun phrases (nltk chunks if its tagger data is installed,
else the whole expression) + grounding of the whole expression, with the detector config's test
pipeline (its test resize), boxes with score >= 0.3 (the released code thresholds Grounding DINO's
boxes; ``score_thr=0.0`` keeps all), no cap per run (as released). Set ``detector_config`` /
``checkpoint`` to the detector you evaluate.
"""
from mmengine.config import Config

from llmvision.apis.detector_candidates import DetectorCandidateSource

detector_config = 'configs/grounding_dino/grounding_dino_tiny_synthetic.py'
checkpoint = None  # e.g. 'checkpoints/llmdet_swin_t_llmvision.pth'
detector_cfg = Config.fromfile(detector_config)

candidate_source = dict(
    type=DetectorCandidateSource,
    detector=detector_cfg.model,
    pipeline=detector_cfg.test_pipeline,
    checkpoint=checkpoint,
    name='grounding_dino',
    score_thr=0.3,
    max_per_prompt=None,
    detection=True,
    grounding=True)
