"""LLaVAModel on a tiny random CLIP + Qwen2: image expansion and padding, the data preprocessor, trainable
sets per stage (projector-only, projector + LLM, LoRA), gradient checkpointing, bf16 autocast, predict."""
import pytest
import torch

from llmvision.models.llm.tiny import lora_cfg
from llmvision.models.lmm import CLIP_MEAN, CLIP_STD, LLaVAModel, LMMDataPreprocessor, tiny_llava_cfg
from llmvision.registry import MODELS
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LMMDataSample

VOCAB = 120
NUM_VIS = 4


def build(seed=0, vocab=VOCAB, **overrides) -> LLaVAModel:
    torch.manual_seed(seed)
    return MODELS.build(tiny_llava_cfg(vocab, **overrides))


def sample(ids, answer_len=2):
    ds = LMMDataSample(metainfo=dict(num_images=ids.count(IMAGE_TOKEN_INDEX)))
    ds.input_ids = torch.tensor(ids)
    labels = torch.full((len(ids),), IGNORE_INDEX)
    labels[-answer_len:] = ds.input_ids[-answer_len:]
    ds.labels = labels
    return ds


def batch_data(seed=2):
    """Raw (dataset-level) batch: image sample, two-image sample, text-only sample."""
    g = torch.Generator().manual_seed(seed)
    ids = [[1, IMAGE_TOKEN_INDEX, 5, 6, 7], [IMAGE_TOKEN_INDEX, 8, IMAGE_TOKEN_INDEX, 9, 10, 11], [12, 13, 14]]
    images = [torch.randint(0, 256, (k, 3, 28, 28), generator=g, dtype=torch.uint8)
              for k in (1, 2, 0)]
    return dict(inputs=images, data_samples=[sample(i) for i in ids])


def step(model, data, mode='loss'):
    data = model.data_preprocessor(data, training=mode == 'loss')
    return model(**data, mode=mode)


def test_preprocessor_stacks_and_normalises():
    data = batch_data()
    out = LMMDataPreprocessor()(data)
    pix = out['inputs']
    assert pix.shape == (3, 3, 28, 28) and pix.dtype == torch.float32
    raw = torch.cat(data['inputs']).float() / 255
    want = (raw - torch.tensor(CLIP_MEAN).view(1, 3, 1, 1)) / torch.tensor(CLIP_STD).view(1, 3, 1, 1)
    assert torch.allclose(pix, want, atol=1e-6)
    text_only = LMMDataPreprocessor()(dict(inputs=[torch.zeros(0, 3, 28, 28, dtype=torch.uint8)],
                                           data_samples=[sample([3, 4])]))
    assert text_only['inputs'].shape[0] == 0
    bad = batch_data()
    bad['inputs'][2] = torch.zeros(1, 3, 28, 28, dtype=torch.uint8)
    with pytest.raises(ValueError, match='sample 2 has 1 image'):
        LMMDataPreprocessor()(bad)


def test_merge_expands_images_in_place_and_pads_both_sides():
    model = build().eval()
    data = model.data_preprocessor(batch_data())
    right = model.prepare_batch(data['inputs'], data['data_samples'])
    left = model.prepare_batch(data['inputs'], data['data_samples'], padding_side='left')
    lengths = [5 - 1 + NUM_VIS, 6 - 2 + 2 * NUM_VIS, 3]
    assert right.attention_mask.sum(1).tolist() == lengths and right.image_counts == [1, 2, 0]
    assert right.inputs_embeds.shape == (3, max(lengths), model.hidden_size)
    assert right.visual_mask.sum(1).tolist() == [NUM_VIS, 2 * NUM_VIS, 0]
    assert right.visual_mask[0, 1:1 + NUM_VIS].all() and right.input_ids[0, 1 + NUM_VIS] == 5
    assert (right.labels[right.visual_mask] == IGNORE_INDEX).all()
    assert right.labels[0, lengths[0] - 2:lengths[0]].tolist() == [6, 7]
    feats = model.encode_images(data['inputs'])
    assert torch.equal(right.inputs_embeds[1, NUM_VIS + 1:2 * NUM_VIS + 1], feats[2])   # second image of sample 1
    with torch.no_grad():
        h_right = model.run_llm(right).hidden_states
        h_left = model.run_llm(left).hidden_states
    for i, n in enumerate(lengths):
        assert torch.allclose(h_right[i, :n], h_left[i, -n:], atol=1e-5)
        assert left.position_ids[i, -n:].tolist() == list(range(n))


def test_image_count_mismatch_is_an_error():
    model = build()
    data = model.data_preprocessor(batch_data())
    with pytest.raises(ValueError, match='3 image placeholders'):
        model(data['inputs'][:2], data['data_samples'], mode='loss')


def trainable(model):
    return {n.split('.')[0] for n, p in model.named_parameters() if p.requires_grad}


def test_trainable_sets_per_stage():
    finetune = build()
    assert trainable(finetune) == {'projector', 'llm'}
    pretrain = build(freeze_llm=True)
    assert trainable(pretrain) == {'projector'}
    lora = build(lora=lora_cfg(r=4, lora_alpha=8))
    names = [n for n, p in lora.named_parameters() if p.requires_grad]
    assert names and all(n.startswith('projector') or 'lora_' in n for n in names)
    assert any('lora_' in n for n in names)
    # a backward reaches exactly the trainable parameters
    loss = step(pretrain, batch_data())['loss']
    loss.backward()
    for n, p in pretrain.named_parameters():
        assert (p.grad is not None) == p.requires_grad, n
    # optimizer built by mmengine with a paramwise_cfg (projector lr x10) sees the projector group
    from mmengine.optim import build_optim_wrapper
    wrapper = build_optim_wrapper(finetune, dict(optimizer=dict(type='AdamW', lr=1e-3),
                                                 paramwise_cfg=dict(custom_keys={'projector': dict(lr_mult=10.)})))
    lrs = {g['lr'] for g in wrapper.optimizer.param_groups}
    assert lrs == {1e-3, 1e-2}


def test_lora_starts_as_identity():
    base, lora = build(), build(lora=lora_cfg(r=4, lora_alpha=8))
    state = {k.replace('.base_layer', ''): v for k, v in lora.state_dict().items() if 'lora_' not in k}
    base.load_state_dict(state)
    with torch.no_grad():
        a = step(base.eval(), batch_data(), 'tensor')['logits']
        b = step(lora.eval(), batch_data(), 'tensor')['logits']
    assert torch.allclose(a, b, atol=1e-6)


def test_gradient_checkpointing_same_loss_and_grads():
    plain = build().train()
    ckpt = build(gradient_checkpointing=True).train()
    ckpt.load_state_dict(plain.state_dict())
    assert ckpt.llm.model.gradient_checkpointing
    losses, grads = [], []
    for model in (plain, ckpt):
        loss = step(model, batch_data())['loss']
        loss.backward()
        losses.append(loss.item())
        grads.append({n: p.grad.clone() for n, p in model.named_parameters() if p.grad is not None})
    assert losses[0] == pytest.approx(losses[1], abs=1e-6)
    assert grads[0].keys() == grads[1].keys() and len(grads[0]) > 10
    for n in grads[0]:
        assert torch.allclose(grads[0][n], grads[1][n], atol=1e-6), n


def test_text_only_batch_keeps_projector_in_graph():
    model = build().train()
    data = dict(inputs=[torch.zeros(0, 3, 28, 28, dtype=torch.uint8)], data_samples=[sample([3, 4, 5, 6])])
    step(model, data)['loss'].backward()
    assert all(p.grad is not None and p.grad.abs().sum() == 0 for p in model.projector.parameters())


def test_bf16_autocast_loss_close_to_fp32():
    model = build().train()
    ref = step(model, batch_data())['loss']
    with torch.autocast('cpu', dtype=torch.bfloat16):
        loss = step(model, batch_data())['loss']
    loss.backward()
    assert loss.dtype == torch.float32 and torch.isfinite(loss)
    assert abs(loss.item() - ref.item()) < 0.05


def test_max_length_truncates_and_counts():
    model = build(max_length=6).eval()
    data = model.data_preprocessor(batch_data())
    batch = model.prepare_batch(data['inputs'], data['data_samples'])
    assert batch.attention_mask.sum(1).tolist() == [6, 6, 3] and model.num_truncated == 2


@pytest.fixture(scope='module')
def tokenizer(tmp_path_factory):
    from transformers import AutoTokenizer

    from llmvision.datasets.synthetic.llm_tokenizer import build_llm_tokenizer
    return AutoTokenizer.from_pretrained(str(build_llm_tokenizer(tmp_path_factory.mktemp('tok'), vocab_size=400)))


def test_predict_sets_pred_text(tokenizer):
    model = build(vocab=len(tokenizer), tokenizer=tokenizer, max_new_tokens=5).eval()
    data = batch_data()
    for ds in data['data_samples']:
        ds.input_ids = torch.where(ds.input_ids == IMAGE_TOKEN_INDEX, ds.input_ids, ds.input_ids + 100)
    out = step(model, data, 'predict')
    assert len(out) == 3 and all(isinstance(ds.pred_text, str) for ds in out)
    batch = model.prepare_batch(model.data_preprocessor(data)['inputs'], data['data_samples'], 'left')
    rows = model.generate_ids(batch)
    assert [ds.pred_text for ds in out] == [tokenizer.decode(r, skip_special_tokens=True).strip() for r in rows]
    # a stop string cuts the text and ends the row
    text = tokenizer.decode(rows[0], skip_special_tokens=True)
    if len(text.strip()) > 2:
        stop = text.strip()[1:3]
        cut = step(build(vocab=len(tokenizer), tokenizer=tokenizer, max_new_tokens=5, stop_strings=[stop]).eval(),
                   data, 'predict')
        assert stop not in cut[0].pred_text
    beams = model.predict(model.data_preprocessor(data)['inputs'], data['data_samples'], num_beams=2)
    assert len(beams) == 3
