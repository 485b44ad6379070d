"""VQAAccuracyMetric: normalised exact match per type and overall, prior = best constant training answer."""
import json

import pytest
from mmengine.evaluator import Evaluator

from llmvision.evaluation.vqa_metric import VQAAccuracyMetric, answer_prior, normalize_answer
from llmvision.structures.lmm_sample import LMMDataSample


def _rec(i, qtype, answer, question='q'):
    return {'id': str(i), 'question_type': qtype,
            'conversations': [{'from': 'human', 'value': '<image>\n' + question}, {'from': 'gpt', 'value': answer}]}


def _sample(qtype, gt, pred, question='q'):
    s = LMMDataSample(metainfo=dict(sample_id='s', question_type=qtype, gt_answer=gt, question=question))
    s.pred_text = pred
    return s


def test_normalize_answer():
    assert normalize_answer('  Yes. ') == 'yes'
    assert normalize_answer('Two  Red\nsquares!') == 'two red squares'
    assert normalize_answer(None) == ''


def test_metric_per_type_overall_and_prior(tmp_path):
    train = [_rec(0, 'exist', 'yes'), _rec(1, 'exist', 'no'), _rec(2, 'exist', 'No.'),
             _rec(3, 'colour', 'red', 'star?'), _rec(4, 'colour', 'red', 'star?'),
             _rec(5, 'colour', 'blue', 'circle?'), _rec(6, 'colour', 'blue', 'square?'),
             _rec(7, 'caption', 'a red circle')]
    path = tmp_path / 'train.json'
    path.write_text(json.dumps(train))
    const, per_question = answer_prior(str(path))
    assert const == {'exist': 'no', 'colour': 'blue', 'caption': 'a red circle'}  # colour tie -> alphabetical
    assert per_question[('colour', 'star')] == 'red' and per_question[('exist', 'q')] == 'no'
    samples = [_sample('exist', 'yes', 'Yes.'), _sample('exist', 'no', 'yes'), _sample('exist', 'no', 'no'),
               _sample('exist', 'no', 'no'),
               _sample('colour', 'red', 'red', 'Star?'),         # the question prior knows stars are red
               _sample('colour', 'green', 'green', 'triangle?'),  # unseen question: constant 'blue'
               _sample('caption', 'a red circle', 'x')]
    ev = Evaluator(VQAAccuracyMetric(train_ann_file=str(path)))
    ev.process(samples, {})
    m = ev.evaluate(len(samples))
    assert m['vqa/exist'] == pytest.approx(75.0) and m['vqa/prior/exist'] == pytest.approx(75.0)
    assert m['vqa/colour'] == pytest.approx(100.0) and m['vqa/prior/colour'] == pytest.approx(50.0)
    assert m['vqa/const_prior/colour'] == pytest.approx(0.0)
    assert m['vqa/caption'] == 0.0 and m['vqa/prior/caption'] == 100.0
    # overall: micro over exist + colour (caption excluded): 5 of 6; prior 4 of 6
    assert m['vqa/overall'] == pytest.approx(500 / 6) and m['vqa/prior/overall'] == pytest.approx(400 / 6)
    assert m['vqa/gain'] == pytest.approx(100 / 6)
    ev2 = Evaluator(VQAAccuracyMetric(exclude_from_overall=()))
    ev2.process(samples, {})
    m2 = ev2.evaluate(len(samples))
    assert m2['vqa/overall'] == pytest.approx(500 / 7) and 'vqa/prior/overall' not in m2


def test_missing_prediction_raises():
    ev = Evaluator(VQAAccuracyMetric())
    with pytest.raises(ValueError, match='no pred_text'):
        ev.process([LMMDataSample(metainfo=dict(sample_id='q1', gt_answer='yes'))], {})
