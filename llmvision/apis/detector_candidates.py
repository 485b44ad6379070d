"""Candidates for the REC selector from our open-vocabulary detector (Grounding-DINO / LLMDet).

For one (image, expression): object detection over the expression's noun phrases (one category
prompt, label = the phrase) plus phrase grounding of the whole expression (label = the
expression), concatenated into one block (REFERENCE.md section 5: the original used Florence-2
OD + phrase grounding). Boxes come back in original-image pixels (the detector's ``predict``
rescales to ``ori_shape``). It runs a model, so it lives with the inference API, not in ``datasets``
(a dataset only reads the candidate files that ``tools/rec_candidates.py`` writes with it).
"""
import copy
from typing import Callable, List, Optional, Sequence, Union

import torch

from llmvision.registry import MODELS, TASK_UTILS, TRANSFORMS
from llmvision.structures.candidates import CandidateSet
from llmvision.utils.noun_phrases import noun_phrases_or_whole

DEFAULT_PIPELINE = (dict(type='LoadImageFromFile'), dict(type='PackDetInputs'))


@TASK_UTILS.register_module()
class DetectorCandidateSource:
    """Run a detector in ``predict`` mode to propose candidates for a record.

    Args:
        detector: a built model or its config (``MODELS``); any ``BaseModel`` whose
            ``test_step({'inputs': [img], 'data_samples': [sample]})`` fills
            ``pred_instances.bboxes [K, 4]`` (pixel xyxy, original image) / ``.scores [K]`` /
            ``.labels [K]`` (index into ``metainfo['text']`` when it is a list of names; 0 for a
            caption prompt).
        checkpoint: optional checkpoint path loaded into the detector (mmengine format).
        pipeline: transforms (configs or callables) from ``dict(img_path=...)`` to
            ``dict(inputs, data_samples)``: pass the detector config's ``test_pipeline`` so the image
            gets the detector's own test resize (its ``LoadAnnotations`` step is skipped: a record has
            no boxes to load); default ``LoadImageFromFile`` + ``PackDetInputs`` (no resize).
        name: source name in prompts.
        score_thr: keep boxes scoring at least this much. The released LLM-wrapper keeps every box
            of Florence-2 (which has no scores) and the *thresholded* boxes of Grounding DINO; 0.3
            keeps the prompt within its 1024-token budget (a detector's 300 queries would not fit).
            ``0.0`` keeps all.
        max_per_prompt: keep at most this many boxes per run (``None``, the default as released:
            all above the threshold).
        detection / grounding: run the noun-phrase detection / the expression grounding.
        use_nltk: noun chunks with nltk (when its data is present) or the whole expression.
    """

    def __init__(self, detector, checkpoint: Optional[str] = None,
                 pipeline: Optional[Sequence[Union[dict, Callable]]] = None,
                 name: str = 'grounding_dino', score_thr: float = 0.3,
                 max_per_prompt: Optional[int] = None, detection: bool = True,
                 grounding: bool = True, use_nltk: bool = True, device: Optional[str] = None):
        if not (detection or grounding):
            raise ValueError('DetectorCandidateSource: enable detection and/or grounding')
        self.detector = MODELS.build(detector) if isinstance(detector, dict) else detector
        if checkpoint is not None:
            from mmengine.runner import load_checkpoint
            load_checkpoint(self.detector, checkpoint, map_location='cpu')
        if device is not None:
            self.detector.to(device)
        self.detector.eval()
        steps = DEFAULT_PIPELINE if pipeline is None else pipeline
        steps = [t for t in steps if not (isinstance(t, dict) and getattr(t.get('type'), '__name__', t.get('type'))
                                          == 'LoadAnnotations')]
        self.pipeline = [TRANSFORMS.build(dict(t)) if isinstance(t, dict) else t for t in steps]
        self.name, self.score_thr, self.max_per_prompt = name, score_thr, max_per_prompt
        self.detection, self.grounding, self.use_nltk = detection, grounding, use_nltk

    def load(self, record: dict) -> dict:
        """``dict(inputs, data_samples)`` of the record's image through the pipeline."""
        data = dict(img_path=record['img_path'], img_id=record.get('img_id'))
        for t in self.pipeline:
            data = t(data)
            if data is None:
                raise ValueError(f'DetectorCandidateSource: pipeline step {t} dropped '
                                 f'{record["img_path"]}')
        return data

    def _run(self, data: dict, text, labels: List[str]) -> CandidateSet:
        sample = copy.deepcopy(data['data_samples'])
        meta = dict(text=text, custom_entities=isinstance(text, list), tokens_positive=None,
                    rec=False)
        sample.set_metainfo(meta)
        with torch.no_grad():
            (pred,) = self.detector.test_step(dict(inputs=[data['inputs']], data_samples=[sample]))
        inst = pred.pred_instances
        scores = inst.scores.detach().float().cpu()
        keep = (scores >= self.score_thr).nonzero().flatten()
        keep = keep[scores[keep].argsort(descending=True)]
        if self.max_per_prompt is not None:
            keep = keep[:self.max_per_prompt]
        lab = inst.labels.detach().cpu()[keep].tolist()
        if any(not 0 <= i < len(labels) for i in lab):
            raise ValueError(f'detector returned label ids {lab} for {len(labels)} phrases')
        return CandidateSet(self.name, inst.bboxes.detach().float().cpu()[keep].reshape(-1, 4),
                            [labels[i] for i in lab], scores[keep])

    def __call__(self, record: dict) -> CandidateSet:
        data = self.load(record)
        expression = record['expression']
        blocks = []
        if self.detection:
            phrases = noun_phrases_or_whole(expression, self.use_nltk)
            blocks.append(self._run(data, phrases, phrases))
        if self.grounding:
            blocks.append(self._run(data, expression, [expression]))
        return CandidateSet.concat(blocks, self.name)
