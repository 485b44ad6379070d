"""RECSelector: answer-only loss, left-padded batched generation, fallbacks and budgets."""
import pytest
import torch
from transformers import AutoTokenizer, Qwen2Config

from llmvision.models.selectors import RECSelector
from llmvision.structures import CandidateSet, DetDataSample
from llmvision.utils.hf_builder import causal_lm_from_config

LORA_TARGETS = ['q_proj', 'k_proj', 'v_proj', 'o_proj', 'gate_proj', 'up_proj', 'down_proj',
                'lm_head']


@pytest.fixture(scope='module')
def tokenizer(tmp_path_factory):
    from llmvision.datasets.synthetic.llm_tokenizer import build_llm_tokenizer
    return AutoTokenizer.from_pretrained(str(build_llm_tokenizer(tmp_path_factory.mktemp('tok'))))


def make_selector(tokenizer, lora=True, hidden=32, r=4, initializer_range=0.02, **kw):
    from peft import LoraConfig
    cfg = Qwen2Config(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                      num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                      max_position_embeddings=2048, tie_word_embeddings=False,
                      initializer_range=initializer_range)
    return RECSelector(
        llm=dict(type=causal_lm_from_config, config=cfg, seed=0), tokenizer=tokenizer,
        lora=dict(type=LoraConfig, r=r, lora_alpha=2 * r, lora_dropout=0.0,
                  target_modules=LORA_TARGETS) if lora else None, **kw)


def sample(n=3, expression='the red circle on the left', answer='1', scores=True, seed=0):
    g = torch.Generator().manual_seed(seed)
    xy = torch.rand(n, 2, generator=g) * 100
    boxes = torch.cat([xy, xy + 10 + torch.rand(n, 2, generator=g) * 50], 1)
    cs = CandidateSet('gdino', boxes, [f'obj{i}' for i in range(n)],
                      torch.rand(n, generator=g) if scores else None)
    return DetDataSample(metainfo=dict(expression=expression, candidates=[cs], answer=answer))


def prompts(model, samples):
    return [model.serializer.serialize(s.candidates, s.expression).text for s in samples]


def test_loss_is_answer_only_ce(tokenizer):
    torch.manual_seed(0)
    m = make_selector(tokenizer)
    data = [sample(2, answer='1'), sample(5, answer='4', seed=1)]
    ids, mask, labels = m._train_batch(prompts(m, data), data)
    for i, s in enumerate(data):
        p = m.prompt_ids(prompts(m, [s])[0])
        a = tokenizer(s.answer, add_special_tokens=False)['input_ids'] + [tokenizer.eos_token_id]
        n = len(p) + len(a)
        assert ids[i, :n].tolist() == p + a and mask[i].sum() == n
        assert (labels[i, :len(p)] == -100).all() and labels[i, len(p):n].tolist() == a
        assert (labels[i, n:] == -100).all() and (ids[i, n:] == m.pad_id).all()  # right padding
    loss = m.loss(prompts(m, data), data)['loss']
    logits = m.llm(input_ids=ids, attention_mask=mask).logits
    ref = torch.nn.functional.cross_entropy(logits[:, :-1].flatten(0, 1), labels[:, 1:].flatten(),
                                            ignore_index=-100)
    torch.testing.assert_close(loss, ref)
    loss.backward()
    trained = [n for n, p in m.named_parameters() if p.grad is not None]
    assert trained and all('lora_' in n for n in trained)
    assert any('lm_head' in n for n in trained)
    assert all(not p.requires_grad for n, p in m.named_parameters() if 'lora_' not in n)


def test_batched_generation_matches_single(tokenizer):
    torch.manual_seed(0)
    m = make_selector(tokenizer, max_new_tokens=3)
    data = [sample(1, seed=0), sample(6, seed=1), sample(3, 'the larger blue square', seed=2)]
    ids = [m.prompt_ids(p) for p in prompts(m, data)]
    assert len({len(i) for i in ids}) == 3
    batched = m.generate_answers(ids)
    single = [m.generate_answers([i])[0] for i in ids]
    assert batched == single


def test_predict_outcomes(tokenizer, monkeypatch):
    m = make_selector(tokenizer)
    canned = iter(['2', 'garbage', '7', '3'])
    monkeypatch.setattr(m, 'generate_answers', lambda ids: [next(canned) for _ in ids])
    s_ok, s_bad, s_range = sample(3, seed=0), sample(3, seed=1), sample(3, scores=False, seed=2)
    empty = DetDataSample(metainfo=dict(expression='x', candidates=[
        CandidateSet('gdino', torch.zeros(0, 4), [])]))
    out = m.predict([s_ok, empty, s_bad, s_range])
    assert [o.selection_status for o in out] == ['ok', 'no_candidates', 'invalid', 'out_of_range']
    assert torch.equal(out[0].pred_instances.bboxes[0], s_ok.candidates[0].bboxes[2])
    assert out[0].chosen_index == 2 and out[0].raw_answer == '2'
    assert out[1].pred_instances.bboxes.shape == (0, 4) and out[1].raw_answer is None
    top = int(s_bad.candidates[0].scores.argmax())  # fallback: the detector's top-scored box
    assert torch.equal(out[2].pred_instances.bboxes[0], s_bad.candidates[0].bboxes[top])
    assert torch.equal(out[3].pred_instances.bboxes[0], s_range.candidates[0].bboxes[0])  # no scores
    assert m.stats == {'ok': 1, 'no_candidates': 1, 'invalid': 1, 'out_of_range': 1}
    # ensembling: a global index in the second block maps back to that source's box
    a = CandidateSet('gdino', torch.tensor([[0., 0., 9., 9.], [1., 1., 8., 8.]]), ['a', 'b'])
    b = CandidateSet('florence2', torch.tensor([[20., 20., 40., 40.], [50., 50., 70., 90.]]),
                     ['c', 'd'])
    ens = DetDataSample(metainfo=dict(expression='the d', candidates=[a, b]))
    (o,) = m.predict([ens])
    assert o.chosen_source == 'florence2' and o.chosen == (1, 1)
    assert o.pred_instances.bboxes.tolist() == [[50., 50., 70., 90.]]


def test_token_budget(tokenizer, monkeypatch):
    m = make_selector(tokenizer, max_prompt_tokens=250)
    seen = []
    monkeypatch.setattr(m, 'generate_answers', lambda ids: seen.extend(ids) or ['0'] * len(ids))
    big = sample(12, seed=3)
    (o,) = m.predict([big])
    assert o.selection_status == 'truncated' and 0 < len(seen[0]) <= 250
    assert m.stats['truncated'] == 1
    # the truncation keeps the longest prefix of the candidate list that fits
    k = tokenizer.decode(seen[0]).count('* In box ')
    assert 0 < k < 12 and f'there are {k} boxes' in tokenizer.decode(seen[0])
    more = CandidateSet('gdino', big.candidates[0].bboxes[:k + 1], big.candidates[0].labels[:k + 1])
    assert len(m.prompt_ids(m.serializer.serialize([more], big.expression).text)) > 250
    long_expr = sample(2, expression='the red circle ' * 80, seed=4)  # over budget with any box
    (o2,) = m.predict([long_expr])
    assert o2.selection_status == 'over_budget' and o2.raw_answer is None
    top = int(long_expr.candidates[0].scores.argmax())
    assert torch.equal(o2.pred_instances.bboxes[0], long_expr.candidates[0].bboxes[top])
    m_fb = make_selector(tokenizer, max_prompt_tokens=250, overlength='fallback')
    (o3,) = m_fb.predict([big])
    assert o3.selection_status == 'over_budget' and m_fb.stats['over_budget'] == 1
    # training: over-budget samples are dropped and counted; an all-dropped batch gives a zero loss
    texts = prompts(m, [big, long_expr])
    loss = m.loss(texts, [big, long_expr])['loss']
    assert loss.item() == 0 and loss.requires_grad and m.stats['train_dropped_over_budget'] == 2


def test_train_step_with_mmengine_optim_wrapper(tokenizer):
    from mmengine.optim import OptimWrapper
    torch.manual_seed(0)
    m = make_selector(tokenizer)
    data = [sample(3, answer='2', seed=i) for i in range(4)]
    batch = dict(inputs=prompts(m, data), data_samples=data)
    ow = OptimWrapper(torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=1e-2))
    losses = [m.train_step(batch, ow)['loss'].item() for _ in range(15)]
    assert losses[-1] < 0.5 * losses[0]
    # val_step returns one parsed choice per sample (whether '2' is already the answer after 15
    # steps is the memorisation test's job: here the prompt's two tokens flip for a few more steps)
    out = m.val_step(dict(inputs=batch['inputs'], data_samples=data))
    assert len(out) == 4 and all(o.selection_status in ('ok', 'invalid', 'out_of_range') for o in out)
    assert all(o.pred_instances.bboxes.shape == (1, 4) for o in out)


def test_zero_shot_selector_is_frozen(tokenizer):
    m = make_selector(tokenizer, lora=False)
    assert not any(p.requires_grad for p in m.parameters())
    with pytest.raises(ValueError, match='overlength'):
        make_selector(tokenizer, overlength='cut')


def test_lora_selector_memorises_distinct_answers(synthetic_data):
    """The training path end to end on synthetic prompts whose answers differ (a constant answer
    cannot pass): LoRA on a random tiny Qwen2 fits 8 prompts and ``predict`` returns them.

    With the transformers default ``initializer_range=0.02`` the frozen random base carries too
    little signal and LoRA stalls near the answer prior (loss 0.44 after these 150 steps); at
    0.2 (the tiny configs' value) it fits in ~100 steps.
    """
    from llmvision.datasets.rec import (
        SyntheticCandidateSource,
        build_selector_samples,
        load_refer_records,
        pack_selector_sample,
    )
    from llmvision.models.selectors import BoxListPromptSerializer
    tok = AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))
    records = load_refer_records(str(synthetic_data.refcoco_root), split='train')
    samples, _ = build_selector_samples(records, [SyntheticCandidateSource(num_distractors=(0, 1))],
                                        BoxListPromptSerializer(), tok, train=True, num_shuffles=0)
    picked, seen = [], {}
    for s in samples:  # 8 prompts, at least 3 different answers
        if seen.get(s['answer'], 0) < 3:
            seen[s['answer']] = seen.get(s['answer'], 0) + 1
            picked.append(s)
        if len(picked) == 8:
            break
    assert len(set(s['answer'] for s in picked)) >= 3
    torch.manual_seed(0)
    m = make_selector(tok, hidden=64, r=32, initializer_range=0.2, max_new_tokens=2)
    packed = [pack_selector_sample(s) for s in picked]
    batch = dict(inputs=[p['inputs'] for p in packed], data_samples=[p['data_samples'] for p in packed])
    opt = torch.optim.AdamW([p for p in m.parameters() if p.requires_grad], lr=3e-3)
    for _ in range(150):
        loss = m.loss(batch['inputs'], batch['data_samples'])['loss']
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.05
    m.eval()
    out = m.predict(batch['data_samples'])
    assert [o.metainfo['raw_answer'].strip() for o in out] == [s['answer'] for s in picked]
