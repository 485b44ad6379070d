"""models/llm/generation.py on a bare tiny causal LM: greedy and beam tokens equal transformers' generate
(left-padded batch, inputs_embeds), EOS handling, and stop strings."""
import pytest
import torch

from llmvision.models.llm.generation import StopStrings, generate
from llmvision.models.llm.tiny import tiny_qwen2_llm_cfg
from llmvision.utils.hf_builder import build_object

VOCAB, PAD = 80, 0


@pytest.fixture(scope='module')
def llm():
    torch.manual_seed(0)
    return build_object(tiny_qwen2_llm_cfg(VOCAB, num_hidden_layers=2, initializer_range=0.1)).eval()


def left_padded(prompts):
    length = max(map(len, prompts))
    ids = torch.full((len(prompts), length), PAD)
    mask = torch.zeros_like(ids)
    for i, p in enumerate(prompts):
        ids[i, length - len(p):] = torch.tensor(p)
        mask[i, length - len(p):] = 1
    return ids, mask


def ours(llm, ids, mask, **kw):
    embed = llm.get_input_embeddings()
    pos = (mask.cumsum(1) - 1).clamp(min=0)
    out = llm(inputs_embeds=embed(ids), attention_mask=mask, position_ids=pos, use_cache=True)

    def step(e, m, p, past):
        o = llm(inputs_embeds=e, attention_mask=m, position_ids=p, past_key_values=past, use_cache=True)
        return o.logits[:, -1], o.past_key_values

    return generate(step, embed, out.logits[:, -1], out.past_key_values, mask, pos[:, -1] + 1, **kw)


PROMPTS = [[3, 4, 5], [6, 7, 8, 9, 10, 11, 12], [13, 14, 15, 16]]


@pytest.mark.parametrize('num_beams,eos', [(1, 17), (1, 5), (2, 17), (4, 9)])
def test_tokens_equal_transformers_generate(llm, num_beams, eos):
    ids, mask = left_padded(PROMPTS)
    with torch.no_grad():
        ref = llm.generate(inputs_embeds=llm.get_input_embeddings()(ids), attention_mask=mask, max_new_tokens=7,
                           do_sample=False, num_beams=num_beams, eos_token_id=eos, pad_token_id=PAD).tolist()
    rows = ours(llm, ids, mask, max_new_tokens=7, eos_token_ids=[eos], pad_token_id=PAD, num_beams=num_beams)
    for got, want in zip(rows, ref):
        if eos in want:
            want = want[:want.index(eos) + 1]
        assert got == want


def test_eos_ends_a_row_and_is_kept(llm):
    ids, mask = left_padded(PROMPTS)
    free = ours(llm, ids, mask, max_new_tokens=6, eos_token_ids=[], pad_token_id=PAD)
    eos = free[0][2]                       # the third token row 0 generates becomes the EOS id
    rows = ours(llm, ids, mask, max_new_tokens=6, eos_token_ids=[eos], pad_token_id=PAD)
    assert rows[0] == free[0][:free[0].index(eos) + 1]
    assert all(len(r) == 6 or r[-1] == eos for r in rows)


class CharTokenizer:
    """Decodes id i as chr(ord('a') + i % 26) (stand-in for a tokenizer's batch_decode)."""

    def batch_decode(self, rows, skip_special_tokens=False):
        return [''.join(chr(ord('a') + t % 26) for t in r) for r in rows]


def test_stop_strings(llm):
    ids, mask = left_padded(PROMPTS)
    free = ours(llm, ids, mask, max_new_tokens=6, eos_token_ids=[], pad_token_id=PAD)
    text = CharTokenizer().batch_decode([free[1]])[0]
    stop = StopStrings(CharTokenizer(), [text[2:4]])
    for beams in (1, 2):
        rows = ours(llm, ids, mask, max_new_tokens=6, eos_token_ids=[], pad_token_id=PAD, stop_fn=stop,
                    num_beams=beams)
        if beams == 1:
            assert rows[1] == free[1][:4]
        for r in rows:
            decoded = CharTokenizer().batch_decode([r])[0]
            assert len(r) == 6 or decoded.endswith(text[2:4])
    assert stop.truncate('xx' + text[2:4] + 'yy') == 'xx'
