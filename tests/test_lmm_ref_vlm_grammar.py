"""REF-VLM triplet grammar: golden serializations, round trips, clear errors, special tokens."""
import pytest
import torch

from llmvision.models.lmm.ref_vlm.grammar import (
    RefGrammarError,
    Triplet,
    parse_answer,
    serialize_answer,
    serialize_triplet,
)
from llmvision.models.lmm.ref_vlm.tokens import REF_VLM_TOKENS, add_ref_tokens


def test_serialize_golden():
    assert serialize_triplet('red circle', 'box', 2) == \
        '<Phrase>red circle</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>)'
    text = serialize_answer(['There is ', Triplet('a star', 'keypoint', 1), ' and ',
                             Triplet('two squares', 'box', 2), '.'], task='Unit decode (True).')
    assert text == ('<Task>Unit decode (True).</Task>There is <Phrase>a star</Phrase>(<Unit>keypoint</Unit>'
                    '[0]<REF>) and <Phrase>two squares</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>).')


def test_parse_golden_several_phrases():
    text = ('<Task>Unit decode (True).</Task>There is <Phrase>a star</Phrase>(<Unit>keypoint</Unit>[0]<REF>) '
            'and <Phrase>two squares</Phrase> ( <Unit>box</Unit> [0]<REF> [1]<REF> ).')
    ans = parse_answer(text)
    assert ans.task == 'Unit decode (True).'
    assert [(t.phrase, t.unit, t.num_refs) for t in ans.triplets] == [('a star', 'keypoint', 1),
                                                                       ('two squares', 'box', 2)]
    assert ans.ref_owner == [0, 1, 1] and ans.num_refs == 3
    s, e = ans.triplets[0].span
    assert text[s:e] == '<Phrase>a star</Phrase>(<Unit>keypoint</Unit>[0]<REF>)'


def test_round_trip_and_plain_text():
    parts = [Triplet('red circle', 'box', 3), ' near ', Triplet('blue star', 'box', 1)]
    ans = parse_answer(serialize_answer(parts))
    assert ans.triplets == [p for p in parts if isinstance(p, Triplet)]
    assert parse_answer('no objects here.').triplets == []


@pytest.mark.parametrize('text, msg', [
    ('<Phrase>red circle(<Unit>box</Unit>[0]<REF>)', 'unbalanced <Phrase>'),
    ('red circle</Phrase>(<Unit>box</Unit>[0]<REF>)', 'unbalanced </Phrase>'),
    ('<Phrase>red circle</Phrase>(<Unit>box[0]<REF>)', 'unbalanced <Unit>'),
    ('<Phrase>red circle</Phrase>(<Unit>polygon</Unit>[0]<REF>)', "unknown unit 'polygon'"),
    ('<Phrase>red circle</Phrase>(<Unit>box</Unit>[0]<REF>[2]<REF>)', 'index gap: expected [1], found [2]'),
    ('<Phrase>red circle</Phrase>(<Unit>box</Unit>[1]<REF>)', 'index gap: expected [0]'),
    ('<Phrase>red circle</Phrase>(<Unit>box</Unit>[0]<REF>', "expected ')'"),
    ('<Phrase>red circle</Phrase> and more', "expected '('"),
    ('<Phrase>red circle</Phrase>(<Unit>box</Unit>)', 'at least one [0]<REF>'),
    ('<Phrase>red circle</Phrase>(<Unit>box</Unit>[0])', "expected '<REF>'"),
    ('there is [0]<REF>', '<REF> outside a triplet'),
    ('<Task>a<Phrase>x</Phrase>(<Unit>box</Unit>[0]<REF>)', 'unbalanced <Task>'),
    ('<Phrase></Phrase>(<Unit>box</Unit>[0]<REF>)', 'empty phrase'),
])
def test_malformed_text_raises(text, msg):
    with pytest.raises(RefGrammarError, match=msg.replace('[', r'\[').replace(']', r'\]')
                       .replace('(', r'\(').replace(')', r'\)')) as err:
        parse_answer(text)
    assert 'at character' in str(err.value)


def test_unit_set_is_configurable():
    with pytest.raises(RefGrammarError, match='unknown unit'):
        parse_answer('<Phrase>x</Phrase>(<Unit>keypoint</Unit>[0]<REF>)', units=('box',))


def test_tokens_added_and_embedding_resized(tmp_path):
    from transformers import AutoTokenizer, Qwen2Config, Qwen2ForCausalLM

    from llmvision.datasets.synthetic import build_llm_tokenizer
    tok = AutoTokenizer.from_pretrained(str(build_llm_tokenizer(tmp_path / 'tok', vocab_size=300)))
    n0 = len(tok)
    llm = Qwen2ForCausalLM(Qwen2Config(hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                       num_attention_heads=2, num_key_value_heads=1, vocab_size=n0,
                                       tie_word_embeddings=False))
    old = llm.get_input_embeddings().weight.detach().clone()
    ids = add_ref_tokens(tok, llm)
    assert len(tok) == n0 + len(REF_VLM_TOKENS) and sorted(ids.values()) == list(range(n0, len(tok)))
    assert llm.get_input_embeddings().weight.shape[0] == len(tok)
    assert llm.get_output_embeddings().weight.shape[0] == len(tok)
    new = llm.get_input_embeddings().weight.detach()
    assert torch.equal(new[:n0], old)
    assert torch.allclose(new[n0:], old.mean(0).expand(len(REF_VLM_TOKENS), -1))
    assert add_ref_tokens(tok, llm) == ids and len(tok) == n0 + len(REF_VLM_TOKENS)  # idempotent
    text = serialize_triplet('red circle', 'box', 2)
    enc = tok.encode(text, add_special_tokens=False)
    assert enc.count(ids['<REF>']) == 2
    # the tags survive decoding with skip_special_tokens=True (the parser needs them)
    assert tok.decode(enc, skip_special_tokens=True) == text
