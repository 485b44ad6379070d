"""Locally built tokenizers: BERT WordPiece (covers every generated word) and Qwen2-like byte-level BPE."""
import hashlib
import json
import pickle

import pytest
from transformers import AutoTokenizer

from llmvision.datasets.synthetic import build_bert_tokenizer, build_llm_tokenizer
from llmvision.datasets.synthetic.llm_tokenizer import learn_bpe
from llmvision.datasets.synthetic.vocabulary import all_words


def _generated_text(paths):
    texts = []
    for p in (paths.train_odvg, paths.val_odvg):
        with open(p, encoding='utf-8') as f:
            for line in f:
                d = json.loads(line)
                texts.append(d['grounding']['caption'])
                texts += [r['phrase'] for r in d['grounding']['regions']]
                texts += [c['value'].replace('<image>\n', '') for c in d['conversations']]
    with open(paths.refcoco_root / 'refcoco' / 'refs(unc).p', 'rb') as f:
        texts += [s['sent'] for r in pickle.load(f) for s in r['sentences']]
    return texts


def _digest(d):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(d.iterdir())}


def test_bert_tokenizer_loads_and_covers_generated_text(synthetic_data):
    tok = AutoTokenizer.from_pretrained(str(synthetic_data.bert_tokenizer))
    assert 'Bert' in type(tok).__name__ and tok.is_fast
    assert [tok.pad_token_id, tok.unk_token_id, tok.cls_token_id, tok.sep_token_id, tok.mask_token_id] == [
        0, 1, 2, 3, 4]
    for p in '.?,':
        assert tok.convert_tokens_to_ids(p) != tok.unk_token_id
    texts = _generated_text(synthetic_data)
    assert len(texts) > 100
    enc = tok(texts)['input_ids']
    for text, ids in zip(texts, enc):
        assert tok.unk_token_id not in ids, text
        assert ids[0] == tok.cls_token_id and ids[-1] == tok.sep_token_id
        pieces = tok.convert_ids_to_tokens(ids)
        assert not any(p.startswith('##') for p in pieces), (text, pieces)  # whole words only
    ids = tok('There are TWO Blue Squares.')['input_ids']
    assert tok.decode(ids, skip_special_tokens=True) == 'there are two blue squares.'
    # unseen lower-case words still avoid [UNK] (letter pieces)
    assert tok.unk_token_id not in tok('zebra xylophone 42')['input_ids']
    batch = tok(['a red circle.', 'two blue squares and a green star.'], padding=True, return_tensors='pt')
    assert batch['input_ids'].shape[0] == 2 and (batch['input_ids'][0] == 0).any()


def test_llm_tokenizer_chat_template_and_byte_level(synthetic_data):
    tok = AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))
    assert 700 <= len(tok) <= 2100
    assert tok.pad_token == '<|endoftext|>' and tok.eos_token == '<|im_end|>'
    specials = tok.convert_tokens_to_ids(['<|endoftext|>', '<|im_start|>', '<|im_end|>'])
    assert len(set(specials)) == 3 and min(specials) >= len(tok) - 3
    msgs = [{'role': 'user', 'content': 'Describe the image in detail.'},
            {'role': 'assistant', 'content': 'A red circle.'}]
    text = tok.apply_chat_template(msgs, tokenize=False)
    assert text == ('<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n'
                    '<|im_start|>user\nDescribe the image in detail.<|im_end|>\n'
                    '<|im_start|>assistant\nA red circle.<|im_end|>\n')
    gen = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    assert gen.endswith('<|im_start|>assistant\n')
    sys_msgs = [{'role': 'system', 'content': 'Be brief.'}] + msgs[:1]
    assert tok.apply_chat_template(sys_msgs, tokenize=False).startswith('<|im_start|>system\nBe brief.<|im_end|>')
    ids = tok(text)['input_ids']
    assert ids.count(specials[1]) == 3 and ids.count(specials[2]) == 3  # specials are single tokens
    # digits split one per token; any text round-trips (byte level, nothing unknown)
    pieces = tok.tokenize('box 1203 at [12.5, 300]')
    assert all(len(p) == 1 for p in pieces if p.isdigit()) and '1203' not in pieces
    for s in ['there are two blue squares.', 'Ünïcode 日本語 🙂 tabs\tand\nnewlines', "it's 42%"]:
        assert tok.decode(tok(s)['input_ids']) == s
    # generated words are compact: one token per word, space and punctuation mark
    cap = 'a red circle and two blue squares.'
    assert len(tok(cap)['input_ids']) == 14
    assert max(len(tok(t)['input_ids']) for t in _generated_text(synthetic_data)) < 400


def test_builders_deterministic(tmp_path):
    a = build_bert_tokenizer(tmp_path / 'b1')
    b = build_bert_tokenizer(tmp_path / 'b2')
    assert _digest(a) == _digest(b)
    assert all(w in (a / 'vocab.txt').read_text().split('\n') for w in all_words())
    c = build_llm_tokenizer(tmp_path / 'l1')
    d = build_llm_tokenizer(tmp_path / 'l2')
    assert _digest(c) == _digest(d)
    small = build_llm_tokenizer(tmp_path / 'l3', vocab_size=300)
    assert len(AutoTokenizer.from_pretrained(str(small))) == 300
    with pytest.raises(ValueError, match='vocab_size'):
        build_llm_tokenizer(tmp_path / 'l4', vocab_size=100)


def test_learn_bpe_merges_most_frequent_pair_first():
    from collections import Counter
    merges = learn_bpe(Counter({'abab': 3, 'abc': 1, 'xy': 1}), num_merges=10)
    assert merges[0] == ('a', 'b')          # count 7
    assert merges[1] == ('ab', 'ab')        # count 3, beats ('ab', 'c') = 1
    assert set(merges) == {('a', 'b'), ('ab', 'ab'), ('ab', 'c'), ('x', 'y')}  # stops when all merged
    assert merges[2:] == [('ab', 'c'), ('x', 'y')]  # ties broken by text


@pytest.mark.parametrize('word', ['red', 'circle', 'squares', 'left', 'yes', 'two', 'color', 'triangle'])
def test_llm_tokenizer_word_same_wherever_it_stands(synthetic_data, word):
    """A word's tokens do not depend on what precedes or follows it (space, quote, newline, start, ? , .)."""
    tok = AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))
    alone = tok(word, add_special_tokens=False)['input_ids']
    assert len(alone) == 1, tok.tokenize(word)  # generated words are single tokens
    for ctx in ('{w}', ' {w}', "'{w}'", '"{w}"', '\n{w}', 'the {w}?', 'a {w}, b', 'is {w}.', '({w})', 'x:{w}'):
        ids = tok(ctx.format(w=word), add_special_tokens=False)['input_ids']
        assert alone[0] in ids, (ctx, tok.tokenize(ctx.format(w=word)))
