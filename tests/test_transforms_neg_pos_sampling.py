"""RandomSamplingNegPos: positives kept, labels remapped, prompt within the token budget."""
import random

import numpy as np
import pytest

from llmvision.datasets.transforms import RandomSamplingNegPos

NAMES = [f'thing {i}' for i in range(50)] + ['very long name ' * 10]


def _results():
    return dict(text=list(NAMES), custom_entities=True, img_path='x.png',
                gt_bboxes=np.arange(16, dtype=np.float32).reshape(4, 4),
                gt_bboxes_labels=np.array([3, 7, 3, 49]), gt_ignore_flags=np.zeros(4, bool))


@pytest.mark.parametrize('seed', range(5))
def test_positives_kept_and_remapped(seed):
    random.seed(seed)
    out = RandomSamplingNegPos(num_sample_negative=10, max_tokens=256)(_results())
    names = out['text']
    assert [names[i] for i in out['gt_bboxes_labels']] == [NAMES[3], NAMES[7], NAMES[3], NAMES[49]]
    np.testing.assert_array_equal(out['gt_bboxes'], _results()['gt_bboxes'])
    assert 3 + 1 <= len(names) <= 3 + 10 and len(set(names)) == len(names)
    assert out['custom_entities'] is True and out['num_dropped_positive_labels'] == 0


def test_full_sampling_draws_exactly_n_negatives():
    random.seed(0)
    out = RandomSamplingNegPos(num_sample_negative=20, full_sampling_prob=1.0)(_results())
    assert len(out['text']) == 3 + 20


def test_budget_with_real_tokenizer_drops_boxes_of_positives_that_do_not_fit(synthetic_data):
    from transformers import AutoTokenizer

    from llmvision.models.language.prompts import build_category_prompt
    tok = AutoTokenizer.from_pretrained(str(synthetic_data.bert_tokenizer), local_files_only=True)
    random.seed(0)
    t = RandomSamplingNegPos(num_sample_negative=40, max_tokens=24, full_sampling_prob=1.0,
                             tokenizer=str(synthetic_data.bert_tokenizer))
    r = _results()
    r['gt_bboxes_labels'] = np.array([3, 7, 50, 49])  # label 50: ~30 tokens, never fits in 24
    out = t(r)
    caption, _ = build_category_prompt(out['text'])
    assert len(tok(caption)['input_ids']) <= 24
    assert NAMES[50] not in out['text'] and out['num_dropped_positive_labels'] == 1
    assert len(out['gt_bboxes']) == len(out['gt_bboxes_labels']) == 3
    assert [out['text'][i] for i in out['gt_bboxes_labels']] == [NAMES[3], NAMES[7], NAMES[49]]


def test_rejects_a_caption():
    with pytest.raises(TypeError, match='x.png'):
        RandomSamplingNegPos()(dict(text='a caption', img_path='x.png', gt_bboxes_labels=np.zeros(0)))
