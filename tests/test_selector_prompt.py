"""REC selector prompt serializer, answer parser, candidate sets (REFERENCE.md section 5)."""
import pytest
import torch

from llmvision.models.selectors import BoxListPromptSerializer, parse_answer
from llmvision.structures import CandidateSet, clip_candidates, fallback_choice

HEAD = ('You are a helpful AI assistant, capable of understanding spatial information. '
        'In an image, there are {n} boxes:')
TAIL = ("Which box is best matching '{q}' ? Answer with just the index of the best box. "
        'No explanation.')


def _cands(source='gdino', scores=True):
    return CandidateSet(source, torch.tensor([[10.0, 20.04, 30.25, 40.0], [0.0, -0.01, 5.0, 5.0]]),
                        ['red circle', 'blue square'],
                        torch.tensor([0.912, 0.2]) if scores else None)


def test_golden_xyxy():
    p = BoxListPromptSerializer().serialize(_cands(), 'the red circle on the left')
    assert p.text == '\n'.join([
        HEAD.format(n=2),
        "* In box 0: 'red circle' with xyxy coordinates '[10.0, 20.0, 30.2, 40.0]',",
        "* In box 1: 'blue square' with xyxy coordinates '[0.0, 0.0, 5.0, 5.0]',",
        TAIL.format(q='the red circle on the left')])
    assert p.index_map == [(0, 0), (0, 1)]


def test_golden_xywh_cxcywh_scores():
    ser = BoxListPromptSerializer(box_format='xywh', with_scores=True)
    lines = ser.serialize(_cands(), 'x').text.split('\n')
    assert lines[1] == "* In box 0: 'red circle' with xywh coordinates '[10.0, 20.0, 20.2, 20.0]' " \
                       'with score 0.91,'
    assert lines[2] == "* In box 1: 'blue square' with xywh coordinates '[0.0, 0.0, 5.0, 5.0]' " \
                       'with score 0.20,'
    line = BoxListPromptSerializer(box_format='cxcywh').serialize(_cands(), 'x').text.split('\n')[1]
    assert line == "* In box 0: 'red circle' with cxcywh coordinates '[20.1, 30.0, 20.2, 20.0]',"
    # scores requested but the source has none: no score suffix
    line = BoxListPromptSerializer(with_scores=True).serialize(_cands(scores=False), 'x').text
    assert 'score' not in line


def test_ensembling_blocks_map_back():
    a = _cands('gdino')
    b = CandidateSet('florence2', torch.tensor([[50.0, 50.0, 60.0, 70.0]] * 3), ['a', 'b', 'c'])
    ser = BoxListPromptSerializer(index_start=1)
    p = ser.serialize([a, b], 'the c')
    lines = p.text.split('\n')
    assert lines[0] == HEAD.format(n=5)
    assert lines[1] == 'Boxes from gdino:'
    assert lines[4] == 'Boxes from florence2:'
    assert lines[5].startswith("* In box 3: 'a'") and lines[7].startswith("* In box 5: 'c'")
    assert p.lookup(5) == (1, 2) and p.lookup(2) == (0, 1) and p.global_index(1, 0) == 3
    with pytest.raises(IndexError):
        p.lookup(0)
    blocks = [a, b]
    bi, j = p.lookup(4)
    assert blocks[bi].source == 'florence2' and blocks[bi].labels[j] == 'b'
    # a single block: no source line unless asked
    assert 'Boxes from' not in ser.serialize([a], 'q').text
    assert 'Boxes from gdino:' in BoxListPromptSerializer(label_sources=True).serialize([a], 'q').text


def test_zero_candidates_and_odd_text():
    p = BoxListPromptSerializer().serialize(CandidateSet('s', torch.zeros(0, 4), []), 'a\nb  c')
    assert p.text == HEAD.format(n=0) + '\n' + TAIL.format(q='a b c') and p.num_boxes == 0


def test_chat_template_wrapping():
    class Tok:
        chat_template = 'x'

        def apply_chat_template(self, messages, tokenize, add_generation_prompt):
            assert not tokenize and add_generation_prompt
            return '|'.join(f"{m['role']}:{m['content']}" for m in messages) + '|assistant:'

    ser = BoxListPromptSerializer(system_prompt='sys')
    assert ser.chat_text('hi', Tok()) == 'system:sys|user:hi|assistant:'
    Tok.chat_template = None
    with pytest.raises(ValueError, match='chat_template'):
        ser.chat_text('hi', Tok())


@pytest.mark.parametrize('text,n,start,expected', [
    ('3', 5, 0, (3, 'ok')),
    (' Box 2, not 4', 5, 0, (2, 'ok')),
    ('12', 20, 0, (12, 'ok')),
    ('index: 007', 8, 0, (7, 'ok')),
    ('the best box', 5, 0, (None, 'invalid')),
    ('', 5, 0, (None, 'invalid')),
    ('5', 5, 0, (None, 'out_of_range')),
    ('0', 5, 1, (None, 'out_of_range')),
    ('5', 5, 1, (5, 'ok')),
    ('99 then 1', 5, 0, (None, 'out_of_range')),
    ('-1', 5, 0, (1, 'ok')),  # first run of digits, sign ignored
])
def test_parse_answer(text, n, start, expected):
    assert parse_answer(text, n, start) == expected


def test_fallback_choice():
    a = _cands()
    assert fallback_choice([a]) == (0, 0)
    a.scores = torch.tensor([0.1, 0.8])
    assert fallback_choice([a]) == (0, 1)
    empty = CandidateSet('e', torch.zeros(0, 4), [])
    assert fallback_choice([empty, _cands(scores=False)]) == (1, 0)
    assert fallback_choice([empty]) is None


def test_candidate_set_validation_and_clip():
    with pytest.raises(ValueError, match='2 boxes but 1 labels'):
        CandidateSet('s', torch.zeros(2, 4), ['a'])
    with pytest.raises(ValueError, match='scores'):
        CandidateSet('s', torch.zeros(2, 4), ['a', 'b'], [0.1])
    c = CandidateSet('s', torch.tensor([[-10.0, -5.0, 20.0, 30.0], [200.0, 10.0, 300.0, 40.0],
                                        [90.0, 90.0, 150.0, 150.0]]), ['a', 'b', 'c'], [0.1, .2, .3])
    out, dropped = clip_candidates(c, (100, 100))  # H, W
    assert dropped == 1 and out.labels == ['a', 'c']
    assert out.bboxes.tolist() == [[0.0, 0.0, 20.0, 30.0], [90.0, 90.0, 100.0, 100.0]]
    assert torch.allclose(out.scores, torch.tensor([0.1, 0.3]))
    back = CandidateSet.from_dict(out.to_dict())
    assert torch.equal(back.bboxes, out.bboxes) and back.labels == out.labels
    with pytest.raises(ValueError, match='f.jsonl:3'):
        CandidateSet.from_dict({'bboxes': [[1, 2, 3]]}, where='f.jsonl:3')
