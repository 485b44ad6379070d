"""REC selector prompt serializer, answer parser, candidate sets (REFERENCE.md section 5)."""
import pytest
import torch

from llmvision.models.selectors import BoxListPromptSerializer, parse_answer
from llmvision.models.selectors.serializer import LLAMA3_RELEASED_CHAT
from llmvision.structures import CandidateSet, clip_candidates, fallback_choice

HEAD = ('You are a helpful AI assistant, capable of understanding spatial information.\n'
        'In an image, there are {n} boxes:')
TAIL = ("Which box is best matching '{q}' ? Answer with just the index of the best box. "
        'No explanation.')


def _cands(source='gdino', scores=True):
    return CandidateSet(source, torch.tensor([[10.0, 20.04, 30.25, 40.0], [-2.0, -0.01, 5.0, 5.0]]),
                        ['Red circle ', 'blue square'],
                        torch.tensor([0.912, 0.2]) if scores else None)


def test_golden_v31_released_layout():
    """Prompt v31 of LLM-wrapper v1.0.0: count on its own line, labels lower-cased, round(v, 1)
    printed as a Python list, x1/y1 <= 0 printed as 0.0, the last box line ends with '.'."""
    p = BoxListPromptSerializer().serialize(_cands(), 'the Red circle on the left')
    assert p.text == (
        'You are a helpful AI assistant, capable of understanding spatial information.\n'
        'In an image, there are 2 boxes:\n'
        "* In box 0: 'red circle' with xyxy coordinates '[10.0, 20.0, 30.2, 40.0]',\n"
        "* In box 1: 'blue square' with xyxy coordinates '[0.0, 0.0, 5.0, 5.0]'.\n"
        "Which box is best matching 'the Red circle on the left' ? Answer with just the index of the "
        'best box. No explanation.')
    assert p.index_map == [(0, 0), (0, 1)]


def test_golden_v32_scores_and_formats():
    """v32: `` with score {round(s, 2)}`` (printed as Python prints the float: 0.2, not 0.20)."""
    lines = BoxListPromptSerializer(with_scores=True).serialize(_cands(), 'x').text.split('\n')
    assert lines[2] == "* In box 0: 'red circle' with xyxy coordinates '[10.0, 20.0, 30.2, 40.0]' with score 0.91,"
    assert lines[3] == "* In box 1: 'blue square' with xyxy coordinates '[0.0, 0.0, 5.0, 5.0]' with score 0.2."
    line = BoxListPromptSerializer(box_format='xywh').serialize(_cands(), 'x').text.split('\n')[2]
    assert line == "* In box 0: 'red circle' with xywh coordinates '[10.0, 20.0, 20.2, 20.0]',"
    line = BoxListPromptSerializer(box_format='cxcywh').serialize(_cands(), 'x').text.split('\n')[3]
    assert line == "* In box 1: 'blue square' with cxcywh coordinates '[1.5, 2.5, 7.0, 5.0]'."
    # scores requested but the source has none: no score suffix
    assert 'score' not in BoxListPromptSerializer(with_scores=True).serialize(_cands(scores=False), 'x').text
    # switches that restore the raw values
    raw = BoxListPromptSerializer(lowercase_labels=False, clamp_origin=False).serialize(_cands(), 'x').text
    assert "'Red circle' with xyxy coordinates '[10.0, 20.0, 30.2, 40.0]'" in raw
    assert "'[-2.0, -0.0, 5.0, 5.0]'" in raw


def test_golden_ensemble_released_layout():
    """Two detectors: one header, 'Box k: {name} found', indices run on, each block ends with '.'."""
    a = _cands('florence2', scores=False)
    b = CandidateSet('grounding_dino', torch.tensor([[50.0, 50.0, 60.0, 70.0]] * 3), ['a', 'b', 'c'],
                     torch.tensor([0.5, 0.25, 0.125]))
    p = BoxListPromptSerializer().serialize([a, b], 'the c')
    assert p.text == (
        'You are a helpful AI assistant, capable of understanding spatial information.\n'
        'In an image, I got boxes from two object detectors:\n'
        "* Box 0: Florence-2 found 'red circle' with xyxy coordinates '[10.0, 20.0, 30.2, 40.0]',\n"
        "* Box 1: Florence-2 found 'blue square' with xyxy coordinates '[0.0, 0.0, 5.0, 5.0]'.\n"
        "* Box 2: Grounding DINO found 'a' with xyxy coordinates '[50.0, 50.0, 60.0, 70.0]',\n"
        "* Box 3: Grounding DINO found 'b' with xyxy coordinates '[50.0, 50.0, 60.0, 70.0]',\n"
        "* Box 4: Grounding DINO found 'c' with xyxy coordinates '[50.0, 50.0, 60.0, 70.0]'.\n"
        "Which box is best matching 'the c' ? Answer with just the index of the best box. No explanation.")
    assert p.lookup(4) == (1, 2) and p.lookup(1) == (0, 1) and p.global_index(1, 0) == 2
    with pytest.raises(IndexError):
        p.lookup(5)
    scored = BoxListPromptSerializer(with_scores=True, index_start=1).serialize([a, b], 'q').text.split('\n')
    assert scored[5] == ("* Box 4: Grounding DINO found 'b' with xyxy coordinates '[50.0, 50.0, 60.0, 70.0]' "
                         'with score 0.25,')
    named = BoxListPromptSerializer(source_names={'florence2': 'VLM-A'}).serialize([a, b], 'q').text
    assert "* Box 0: VLM-A found 'red circle'" in named and "* Box 2: grounding_dino found 'a'" in named


def test_zero_candidates_and_odd_text():
    p = BoxListPromptSerializer().serialize(CandidateSet('s', torch.zeros(0, 4), []), 'a\nb  c')
    assert p.text == HEAD.format(n=0) + '.\n' + TAIL.format(q='a b  c') and p.num_boxes == 0


def test_released_llama3_chat_format():
    ser = BoxListPromptSerializer(chat_format=LLAMA3_RELEASED_CHAT)
    assert ser.chat_text('hi', tokenizer=None) == (
        '<|begin_of_text|><|start_header_id|>user<|end_header_id|>hi<|eot_id|>'
        '<|start_header_id|>assistant<|end_header_id|>')
    with pytest.raises(ValueError, match='prompt'):
        BoxListPromptSerializer(chat_format='no placeholder')


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


@pytest.mark.parametrize('answer_eos', [True, False])
def test_training_target_ends_with_or_without_eos(tmp_path, answer_eos):
    """LLM-wrapper v1.0.0 trains on prompt + index with no EOS (``answer_eos=False``, the real-model
    configs); the tiny random-init configs keep the EOS (the class default) so generation stops."""
    from transformers import AutoTokenizer, Qwen2Config

    from llmvision.datasets.synthetic.llm_tokenizer import build_llm_tokenizer
    from llmvision.models.selectors import RECSelector
    from llmvision.structures import DetDataSample
    from llmvision.utils.hf_builder import causal_lm_from_config
    tok = AutoTokenizer.from_pretrained(str(build_llm_tokenizer(tmp_path / 'tok')))
    llm = dict(type=causal_lm_from_config, seed=0,
               config=Qwen2Config(vocab_size=len(tok), hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                  num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=False))
    sel = RECSelector(llm=llm, tokenizer=tok, answer_eos=answer_eos)
    assert sel.answer_eos is answer_eos
    data = [DetDataSample(metainfo=dict(answer=a)) for a in ('12', '0')]
    texts = [BoxListPromptSerializer().serialize(_cands(), q).text for q in ('the red circle', 'a much longer query')]
    ids, mask, labels = sel._train_batch(texts, data)
    for i, s in enumerate(data):
        target = labels[i][labels[i] != -100].tolist()
        digits = tok(s.metainfo['answer'], add_special_tokens=False)['input_ids']
        assert target == digits + ([tok.eos_token_id] if answer_eos else [])
        n = int(mask[i].sum())  # the sequence ends where the target ends (right padding after it)
        assert ids[i, n - len(target):n].tolist() == target and (labels[i, n:] == -100).all()
    default = RECSelector(llm=llm, tokenizer=tok)
    assert default.answer_ids('3')[-1] == tok.eos_token_id
