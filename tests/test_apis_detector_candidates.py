"""DetectorCandidateSource against a fake detector with the GroundingDINO predict interface.

The fake returns fixed pred_instances and records the prompts it was given, so the test checks
the two runs (noun-phrase detection + expression grounding), label mapping, score filtering,
the per-run cap and the default image pipeline.
"""
import pytest
import torch
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from llmvision.apis.detector_candidates import DetectorCandidateSource
from llmvision.structures import DetDataSample
from llmvision.utils.noun_phrases import nltk_available
from llmvision.utils.noun_phrases import noun_phrases_or_whole as noun_phrases


class FakeDetector(BaseModel):
    """``predict``: for a list of names, one box per name (score 0.9, 0.2, 0.9, ...); for a
    caption, three boxes with scores 0.8 / 0.5 / 0.1 (label 0)."""

    def __init__(self):
        super().__init__()
        self.prompts = []
        self.dummy = torch.nn.Parameter(torch.zeros(1))

    def forward(self, inputs, data_samples=None, mode='tensor'):
        assert mode == 'predict'
        out = []
        for img, s in zip(inputs, data_samples):
            assert img.ndim == 3 and 'ori_shape' in s.metainfo
            text = s.metainfo['text']
            self.prompts.append((text, s.metainfo['custom_entities']))
            pred = InstanceData()
            if isinstance(text, list):
                n = len(text)
                pred.bboxes = torch.tensor([[10. * i, 0., 10. * i + 5, 5.] for i in range(n)])
                pred.scores = torch.tensor([0.9 if i % 2 == 0 else 0.2 for i in range(n)])
                pred.labels = torch.arange(n)
            else:
                pred.bboxes = torch.tensor([[1., 1., 9., 9.], [2., 2., 8., 8.], [3., 3., 4., 4.]])
                pred.scores = torch.tensor([0.5, 0.8, 0.1])
                pred.labels = torch.zeros(3, dtype=torch.long)
            s.pred_instances = pred
            out.append(s)
        return out


def fake_pipeline(data):
    return dict(inputs=torch.zeros(3, 20, 30, dtype=torch.uint8),
                data_samples=DetDataSample(metainfo=dict(img_path=data['img_path'],
                                                         ori_shape=(20, 30), img_shape=(20, 30))))


def test_detection_plus_grounding():
    det = FakeDetector()
    src = DetectorCandidateSource(det, pipeline=[fake_pipeline], score_thr=0.3, use_nltk=False)
    rec = dict(key='k', img_path='x.png', expression='the red circle on the left')
    c = src(rec)
    assert det.prompts == [(['the red circle on the left'], True),
                           ('the red circle on the left', False)]
    # detection: 1 phrase -> 1 box (0.9); grounding: 0.8 then 0.5 (sorted), 0.1 filtered
    assert c.source == 'grounding_dino' and len(c) == 3
    assert c.labels == ['the red circle on the left'] * 3
    assert torch.allclose(c.scores, torch.tensor([0.9, 0.8, 0.5]))
    assert c.bboxes.tolist() == [[0., 0., 5., 5.], [2., 2., 8., 8.], [1., 1., 9., 9.]]
    capped = DetectorCandidateSource(FakeDetector(), pipeline=[fake_pipeline], score_thr=0.0,
                                     max_per_prompt=1, detection=False)(rec)
    assert len(capped) == 1 and capped.scores.tolist() == [0.800000011920929]


def test_noun_phrase_labels_map_back(monkeypatch):
    import llmvision.apis.detector_candidates as mod
    monkeypatch.setattr(mod, 'noun_phrases_or_whole', lambda e, use_nltk: ['red circle', 'blue square',
                                                                   'table'])
    c = DetectorCandidateSource(FakeDetector(), pipeline=[fake_pipeline], grounding=False,
                                score_thr=0.3)(dict(key='k', img_path='x', expression='e'))
    assert c.labels == ['red circle', 'table']  # 'blue square' scored 0.2
    assert c.bboxes.tolist() == [[0., 0., 5., 5.], [20., 0., 25., 5.]]


EXPRESSION = 'the red circle left of the blue square'


def test_noun_phrases_fallback(monkeypatch):
    import llmvision.utils.noun_phrases as mod
    assert noun_phrases('  the  red circle ', use_nltk=False) == ['the red circle']
    assert noun_phrases('') == []
    monkeypatch.setattr(mod, 'nltk_available', lambda: False)
    assert noun_phrases(EXPRESSION) == [EXPRESSION]


def test_noun_phrases_chunk_the_tagged_words(monkeypatch):
    """The chunker on a fixed tagging (no nltk data needed): determiners dropped, one phrase per NP."""
    import nltk

    import llmvision.utils.noun_phrases as mod
    tags = dict(the='DT', red='JJ', circle='NN', left='VBD', of='IN', blue='JJ', square='NN')
    monkeypatch.setattr(mod, 'nltk_available', lambda: True)
    monkeypatch.setattr(nltk, 'pos_tag', lambda words: [(w, tags[w]) for w in words])
    assert noun_phrases(EXPRESSION) == ['red circle', 'blue square']
    assert noun_phrases('the the') == ['the the']  # no noun phrase: the whole expression


@pytest.mark.skipif(not nltk_available(), reason='nltk tagger data not installed ($NLTK_DATA)')
def test_noun_phrases_with_the_real_tagger():
    out = noun_phrases(EXPRESSION)
    assert 'red circle' in out and 'blue square' in out


def test_default_pipeline_reads_the_image(synthetic_data):
    from llmvision.datasets.rec import load_refer_records
    rec = load_refer_records(str(synthetic_data.refcoco_root), split='val',
                             img_prefix=str(synthetic_data.image_dir))[0]
    det = FakeDetector()
    c = DetectorCandidateSource(det, score_thr=0.0, use_nltk=False)(rec)
    assert len(c) == 4 and det.prompts[1] == (rec['expression'], False)


def test_detector_test_pipeline_is_used_without_annotation_loading():
    """The rec_candidates config hands the detector config's test pipeline (its test resize); the
    LoadAnnotations step is skipped; no cap per run by default (as released)."""
    from mmengine.config import Config

    from llmvision.datasets.transforms import FixScaleResize, LoadImageFromFile, PackDetInputs
    cfg = Config.fromfile('configs/llm_wrapper/rec_candidates_gdino.py').candidate_source
    src = DetectorCandidateSource(FakeDetector(), pipeline=cfg.pipeline)
    assert [type(t) for t in src.pipeline] == [LoadImageFromFile, FixScaleResize, PackDetInputs]
    assert src.max_per_prompt is None and cfg.max_per_prompt is None
