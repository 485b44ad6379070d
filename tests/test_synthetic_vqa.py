"""Synthetic VQA set: answers true to the scene, every type present, balanced yes/no, deterministic, tokenizer
covers every word with one token; make_synthetic_dataset (the tool) writes it."""
import json
import re

import numpy as np
from transformers import AutoTokenizer

from llmvision.datasets.synthetic.vqa import (
    COUNT_WORDS,
    QUESTION_TYPES,
    caption_text,
    image_questions,
    read_detection_jsonl,
    vqa_records,
)


def _records(path):
    return json.loads(path.read_text(encoding='utf-8'))


def test_answers_follow_the_scene():
    objs = [('red', 'circle', [10, 10, 30, 30]), ('blue', 'star', [50, 60, 70, 80]),
            ('red', 'square', [80, 5, 95, 20]), ('red', 'square', [120, 5, 140, 20])]
    qa = {t: (q, a) for t, q, a in image_questions(objs, np.random.default_rng(0))}
    assert set(qa) == set(QUESTION_TYPES)
    q, a = qa['exist']
    assert a == ('yes' if q in ('Is there a red circle?', 'Is there a blue star?', 'Is there a red square?')
                 else 'no')
    assert qa['colour'][1] == {'What color is the circle?': 'red', 'What color is the star?': 'blue'}[qa['colour'][0]]
    colour = qa['count'][0].split(' ')[2]
    assert qa['count'][1] == COUNT_WORDS[sum(o[0] == colour for o in objs)]
    assert qa['caption'][1] == 'a red circle, two red squares and a blue star'
    assert qa['number'] == ('How many shapes are there?', 'four')
    assert image_questions([], np.random.default_rng(0))[0] == ('number', 'How many shapes are there?', 'zero')
    assert caption_text([]) == 'no shapes' and caption_text(objs[:1]) == 'a red circle'
    # relation: the only object wholly left of the blue star is the red circle; above it: circle + squares
    rel = {'What shape is left of the blue star?': 'circle', 'What shape is above the blue star?': None,
           'What shape is left of the red circle?': None, 'What shape is above the red circle?': None}
    for seed in range(30):
        q, a = {t: (q, a) for t, q, a in image_questions(objs, np.random.default_rng(seed))}['relation']
        assert q in rel and rel[q] == a, (q, a)


def test_set_on_disk(synthetic_data, tmp_path):
    train, val = _records(synthetic_data.vqa_train), _records(synthetic_data.vqa_val)
    types = [r['question_type'] for r in train]
    assert {'exist', 'count', 'caption'} <= set(types) and set(types) <= set(QUESTION_TYPES)
    assert types.count('exist') == types.count('caption') == 24  # one per image
    assert len({r['id'] for r in train + val}) == len(train) + len(val)
    for r in train + val:
        assert (synthetic_data.image_dir / r['image']).is_file()
        human, gpt = r['conversations']
        assert human['from'] == 'human' and human['value'].startswith('<image>\n') and gpt['from'] == 'gpt'
        assert gpt['value'] == gpt['value'].lower() and len(gpt['value'].split()) <= (20 if r['question_type'] ==
                                                                                         'caption' else 1)
    # determinism: rebuilt from the detection file with the same seed -> identical
    images = read_detection_jsonl(synthetic_data.train_det_odvg)
    assert vqa_records('train', images, seed=0) == train
    assert vqa_records('train', images, seed=1) != train
    assert [r['question_type'] for r in vqa_records('train', images, 0, question_types=['exist'])] == ['exist'] * 24


def test_yes_no_balanced_on_a_larger_draw():
    rng = np.random.default_rng(3)
    answers = []
    for _ in range(400):
        n = int(rng.integers(0, 7))
        objs = [(str(rng.choice(['red', 'blue'])), str(rng.choice(['circle', 'star'])), [0, 0, 1, 1])] * n
        answers += [a for t, _, a in image_questions(objs, rng) if t == 'exist']
    assert 0.4 < answers.count('yes') / len(answers) < 0.6


def test_tokenizer_covers_every_word(synthetic_data):
    tok = AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))
    words = set()
    for r in _records(synthetic_data.vqa_train) + _records(synthetic_data.vqa_val):
        for turn in r['conversations']:
            words.update(re.findall(r'[A-Za-z]+', turn['value'].replace('<image>', '')))
    for w in sorted(words):
        assert len(tok(w, add_special_tokens=False)['input_ids']) == 1, w
        assert len(tok(' ' + w + '?', add_special_tokens=False)['input_ids']) == 3, w


def test_multi_turn_training_file(synthetic_data):
    single = _records(synthetic_data.vqa_train)
    multi = _records(synthetic_data.vqa_train.parent / 'train_multiturn.json')
    assert len(multi) == len({r['image'] for r in single}) == 24
    for m in multi:
        mine = [r for r in single if r['image'] == m['image']]
        turns = m['conversations']
        assert len(turns) == 2 * len(mine) and m['question_type'] == 'multi'
        assert sum(t['value'].count('<image>') for t in turns) == 1 and turns[0]['value'].startswith('<image>\n')
        assert turns[-2]['value'].endswith('Describe the image briefly.')  # caption last: gives nothing away
        assert sorted(t['value'] for t in turns[1::2]) == sorted(r['conversations'][1]['value'] for r in mine)
