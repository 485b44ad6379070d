"""Chat templates and the conversation encoder (models/llm/conversation.py) and tokenizer loading: golden
sequences for chatml (vs the tokenizer's apply_chat_template) and Vicuna v1 (LLaVA-1.5's published format)."""
import copy

import pytest
from transformers import AutoTokenizer

from llmvision.datasets.synthetic import build_llm_tokenizer
from llmvision.models.llm.conversation import VICUNA_SYSTEM, ConversationEncoder
from llmvision.models.llm.tokenizer import load_tokenizer
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX

CONV = [{'from': 'human', 'value': 'Is there a red circle?'}, {'from': 'gpt', 'value': 'yes'},
        {'from': 'human', 'value': 'What color is the star?'}, {'from': 'gpt', 'value': 'blue'}]
IMG_CONV = [{'from': 'human', 'value': '<image>\nHow many red shapes?'}, {'from': 'gpt', 'value': 'two'}]


@pytest.fixture(scope='module')
def tok(tmp_path_factory):
    return AutoTokenizer.from_pretrained(str(build_llm_tokenizer(tmp_path_factory.mktemp('tok'))))


def _ids(tok, text):
    return tok(text, add_special_tokens=False)['input_ids']


def _labelled(enc):
    return [t for t, lab in zip(enc.input_ids, enc.labels) if lab != IGNORE_INDEX]


def test_chatml_matches_apply_chat_template(tok):
    enc = ConversationEncoder(tok, 'chatml')
    msgs = [{'role': 'user' if m['from'] == 'human' else 'assistant', 'content': m['value']} for m in CONV]
    ref = tok.apply_chat_template(msgs, tokenize=False)
    assert enc.render(enc.to_messages(CONV)) == ref
    out = enc.encode(CONV)
    assert out.input_ids == _ids(tok, ref) and not out.truncated and out.num_images == 0
    end = tok.convert_tokens_to_ids('<|im_end|>')
    assert _labelled(out) == _ids(tok, 'yes') + [end] + _ids(tok, 'blue') + [end]
    # labels sit exactly after each generation prompt
    prompt = tok.apply_chat_template(msgs[:1], tokenize=False, add_generation_prompt=True)
    n = len(_ids(tok, prompt))
    assert out.labels[n - 1] == IGNORE_INDEX and out.labels[n:n + 2] == _ids(tok, 'yes') + [end]
    # 'tokenizer' template = the tokenizer's own chatml template here
    assert ConversationEncoder(tok, 'tokenizer').encode(CONV) == out


def test_chatml_image_placeholder_is_one_index(tok):
    out = ConversationEncoder(tok, 'chatml', system='').encode(IMG_CONV)
    golden = ([tok.convert_tokens_to_ids('<|im_start|>')] + _ids(tok, 'user\n') + [IMAGE_TOKEN_INDEX]
              + _ids(tok, '\nHow many red shapes?<|im_end|>\n<|im_start|>assistant\ntwo<|im_end|>\n'))
    assert out.input_ids == golden and out.num_images == 1
    assert out.input_ids.count(IMAGE_TOKEN_INDEX) == 1
    assert _labelled(out) == _ids(tok, 'two<|im_end|>')


def test_vicuna_v1_published_format(tok):
    enc = ConversationEncoder(tok, 'vicuna_v1')
    text = enc.render(enc.to_messages(CONV))
    # LLaVA-1.5 conv_vicuna_v1.get_prompt(): system + ' ' + 'USER: q ' + 'ASSISTANT: a</s>' per round
    assert text == ("A chat between a curious user and an artificial intelligence assistant. The assistant gives "
                    "helpful, detailed, and polite answers to the user's questions. USER: Is there a red circle? "
                    'ASSISTANT: yes</s>USER: What color is the star? ASSISTANT: blue</s>')
    assert text.startswith(VICUNA_SYSTEM + ' USER: ')
    out = enc.encode(CONV)
    assert out.input_ids == _ids(tok, text)  # this tokenizer has no BOS
    assert tok.decode(_labelled(out)) == ' yes</s> blue</s>'
    test = enc.encode(CONV, test_mode=True)
    assert tok.decode(test.input_ids).endswith('USER: What color is the star? ASSISTANT:')
    assert test.gt_answer == 'blue' and set(test.labels) == {IGNORE_INDEX}
    # a tokenizer with a BOS token: LLaVA's tokenizer(prompt) puts it first
    bos_tok = copy.deepcopy(tok)
    bos_tok.bos_token = '<|endoftext|>'
    bos = ConversationEncoder(bos_tok, 'vicuna_v1').encode(CONV)
    assert bos.input_ids == [bos_tok.bos_token_id] + out.input_ids and bos.labels[0] == IGNORE_INDEX
    assert _labelled(bos) == _labelled(out)
    assert ConversationEncoder(tok, 'vicuna_v1').stop_strings == ['</s>']


@pytest.mark.parametrize('template', ['chatml', 'vicuna_v1'])
def test_test_prompt_then_labels_reproduce_training_sequence(tok, template):
    """Generation from the test prompt must produce exactly the supervised tokens of the training sequence."""
    enc = ConversationEncoder(tok, template)
    train = enc.encode(IMG_CONV + CONV[2:])
    for k in (2, 4):
        prompt = enc.encode((IMG_CONV + CONV[2:])[:k], test_mode=True)
        n = len(prompt.input_ids)
        assert train.input_ids[:n] == prompt.input_ids
        assert train.labels[n - 1] == IGNORE_INDEX and train.labels[n] != IGNORE_INDEX
        answer = []
        for t, lab in zip(train.input_ids[n:], train.labels[n:]):
            if lab == IGNORE_INDEX:
                break
            answer.append(t)
        assert tok.decode(answer).strip().startswith(prompt.gt_answer)
        assert any(tok.decode(answer).endswith(s) for s in enc.stop_strings)


def test_truncation_counts_image_tokens(tok):
    full = ConversationEncoder(tok, 'chatml').encode(IMG_CONV)
    cut = ConversationEncoder(tok, 'chatml', max_length=len(full.input_ids) - 3).encode(IMG_CONV)
    assert cut.truncated and cut.input_ids == full.input_ids[:-3] and cut.labels == full.labels[:-3]
    # the image counts image_length tokens: 10 extra tokens cut 10 more text tokens
    img = ConversationEncoder(tok, 'chatml', max_length=len(full.input_ids) + 7, image_length=11).encode(IMG_CONV)
    assert img.truncated and len(img.input_ids) == len(full.input_ids) - 3
    with pytest.raises(ValueError, match='cut an image'):
        ConversationEncoder(tok, 'chatml', max_length=5).encode(IMG_CONV)
    prompt = ConversationEncoder(tok, 'chatml', max_length=5).encode(IMG_CONV, test_mode=True)
    assert prompt.truncated and prompt.input_ids[-1] != IGNORE_INDEX  # test prompts are flagged, kept whole


@pytest.mark.parametrize('conv, msg', [
    ([{'from': 'human', 'value': 'q'}, {'from': 'human', 'value': 'q'}], 'not alternating'),
    ([{'from': 'gpt', 'value': 'a'}], 'not alternating'),
    ([{'from': 'human', 'value': 'q'}, {'from': 'gpt', 'value': '  '}], 'empty answer'),
    ([{'from': 'robot', 'value': 'q'}], 'unknown role'),
    ([{'from': 'human', 'value': 'q'}, {'from': 'system', 'value': 's'}], 'system turn'),
    ([{'from': 'human', 'value': None}], 'must be a string'),
    ([], 'no user turn'),
])
def test_bad_conversations_raise(tok, conv, msg):
    with pytest.raises(ValueError, match=msg):
        ConversationEncoder(tok, 'chatml').encode(conv)


def test_load_tokenizer(tok, tmp_path):
    with pytest.raises(FileNotFoundError, match='put the tokenizer files'):
        load_tokenizer(tmp_path / 'missing')
    assert load_tokenizer(tok) is tok
    path = build_llm_tokenizer(tmp_path / 't')
    assert load_tokenizer(str(path)).vocab == tok.vocab
    built = load_tokenizer(dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=str(path)))
    assert built.vocab == tok.vocab
    with pytest.raises(ValueError, match='unknown chat template'):
        ConversationEncoder(tok, 'llama9')
