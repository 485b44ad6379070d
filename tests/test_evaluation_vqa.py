"""VQAAccuracyMetric: normalised exact match per type and overall, prior = best constant training answer."""
import json

import pytest
from mmengine.evaluator import Evaluator

from llmvision.evaluation.vqa_metric import VQAAccuracyMetric, answer_prior, normalize_answer
from llmvision.structures.lmm_sample import LMMDataSample


def _rec(i, qtype, answer):
    return {'id': str(i), 'question_type': qtype,
            'conversations': [{'from': 'human', 'value': 'q'}, {'from': 'gpt', 'value': answer}]}


def _sample(qtype, gt, pred):
    s = LMMDataSample(metainfo=dict(sample_id='s', question_type=qtype, gt_answer=gt))
    s.pred_text = pred
    return s


def test_normalize_answer():
    assert normalize_answer('  Yes. ') == 'yes'
    assert normalize_answer('Two  Red\nsquares!') == 'two red squares'
    assert normalize_answer(None) == ''


def test_metric_per_type_overall_and_prior(tmp_path):
    train = [_rec(0, 'exist', 'yes'), _rec(1, 'exist', 'no'), _rec(2, 'exist', 'No.'),
             _rec(3, 'colour', 'red'), _rec(4, 'colour', 'blue'),   # tie -> 'blue' (alphabetical)
             _rec(5, 'caption', 'a red circle')]
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(train))
    assert answer_prior(str(path)) == {'exist': 'no', 'colour': 'blue', 'caption': 'a red circle'}
    samples = [_sample('exist', 'yes', 'Yes.'), _sample('exist', 'no', 'yes'), _sample('exist', 'no', 'no'),
               _sample('exist', 'no', 'no'), _sample('colour', 'red', 'red'), _sample('caption', 'a red circle', 'x')]
    ev = Evaluator(VQAAccuracyMetric(train_ann_file=str(path)))
    ev.process(samples, {})
    m = ev.evaluate(len(samples))
    assert m['vqa/exist'] == pytest.approx(75.0) and m['vqa/prior/exist'] == pytest.approx(75.0)
    assert m['vqa/colour'] == pytest.approx(100.0) and m['vqa/prior/colour'] == pytest.approx(0.0)
    assert m['vqa/caption'] == 0.0 and m['vqa/prior/caption'] == 100.0
    # overall: micro over exist + colour (caption excluded): 4 of 5; prior 3 of 5
    assert m['vqa/overall'] == pytest.approx(80.0) and m['vqa/prior/overall'] == pytest.approx(60.0)
    assert m['vqa/gain'] == pytest.approx(20.0)
    ev2 = Evaluator(VQAAccuracyMetric(exclude_from_overall=()))
    ev2.process(samples, {})
    m2 = ev2.evaluate(len(samples))
    assert m2['vqa/overall'] == pytest.approx(400 / 6) and 'vqa/prior/overall' not in m2


def test_missing_prediction_raises():
    ev = Evaluator(VQAAccuracyMetric())
    with pytest.raises(ValueError, match='no pred_text'):
        ev.process([LMMDataSample(metainfo=dict(sample_id='q1', gt_answer='yes'))], {})
