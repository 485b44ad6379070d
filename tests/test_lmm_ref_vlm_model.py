"""REFVLMModel: <REF> states routed to their unit's decoder, losses, masking of other units, greedy predict
with parsed triplets -> pixel boxes / keypoints, parse failures reported; the synthetic REF-VLM data."""
import json

import pytest
import torch
from mmengine.dataset import pseudo_collate

from llmvision.datasets.ref_vlm_json import RefVLMJsonDataset
from llmvision.datasets.synthetic.ref_vlm import NUM_KEYPOINTS, make_ref_vlm_set, shape_vertices
from llmvision.models.llm.conversation import ConversationEncoder
from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder
from llmvision.models.lmm.ref_vlm.keypoint_decoder import RefKeypointDecoder
from llmvision.models.lmm.ref_vlm.model import REFVLMModel
from llmvision.models.lmm.ref_vlm.ref_layout import ref_layout
from llmvision.models.lmm.ref_vlm.tokens import load_ref_vlm_tokenizer
from llmvision.models.lmm.tiny import tiny_llava_cfg
from llmvision.utils.hf_builder import build_object

SIZE = 28
DEC = dict(embed_dims=16, num_layers=1, num_heads=2, ffn_dim=32, num_queries=12)


@pytest.fixture(scope='module')
def ref_set(synthetic_data):
    out = make_ref_vlm_set(synthetic_data.root)
    tok = load_ref_vlm_tokenizer(str(synthetic_data.llm_tokenizer))
    enc = ConversationEncoder(tok, 'chatml', max_length=256, system='')
    kw = dict(encoder=enc, image_size=SIZE, data_prefix=dict(img=str(synthetic_data.image_dir)))
    return dict(out=out, tok=tok, train=RefVLMJsonDataset(str(out['train']), **kw),
                val=RefVLMJsonDataset(str(out['val']), test_mode=True, question_types=['rec', 'kpt'], **kw))


@pytest.fixture(scope='module')
def model(synthetic_data):
    torch.manual_seed(0)
    cfg = tiny_llava_cfg(800, tokenizer=str(synthetic_data.llm_tokenizer), vision=dict(image_size=SIZE),
                         stop_strings=['<|im_end|>'], max_new_tokens=8)
    # the box decoder as REF-VLM (plain head), the keypoint one with the tiny recipe's pointer anchor
    cfg.update(type=REFVLMModel, decoders=dict(box=dict(type=RefBoxDecoder, **DEC),
                                               keypoint=dict(type=RefKeypointDecoder, num_keypoints=5, anchor='pointer',
                                                             **DEC)),
               visual_features=dict(use_convnext=False, use_vit=True))
    return build_object(cfg)


def _pick(ds, qtype, n=1):
    return [i for i in range(len(ds)) if ds.get_data_info(i)['question_type'] == qtype][:n]


def test_synthetic_ref_vlm_records(ref_set):
    recs = json.loads(ref_set['out']['train'].read_text())
    kinds = {r['question_type'] for r in recs}
    assert kinds == {'rec', 'det', 'gcap', 'kpt'}
    for r in recs:
        assert r['conversations'][1]['value'].count('<REF>') == len(r['ref_targets'])
    kpt = next(r for r in recs if r['question_type'] == 'kpt')
    assert all(len(t['keypoints']) == NUM_KEYPOINTS for t in kpt['ref_targets'])
    gcap = [r['conversations'][1]['value'] for r in recs if r['question_type'] == 'gcap']
    assert max(a.count('<Phrase>') for a in gcap) > 1 and all(a.endswith(').') for a in gcap)
    assert shape_vertices('square', [0, 0, 10, 10]) == [(0, 0), (10, 0), (10, 10), (0, 10)]
    coco = json.loads(ref_set['out']['val_kpt_coco'].read_text())
    assert coco['categories'][0]['keypoints'] and all(len(a['keypoints']) == 3 * NUM_KEYPOINTS
                                                      for a in coco['annotations'])


def test_tokens_agree_and_layout(model, ref_set):
    assert model.token_ids == {t: ref_set['tok'].convert_tokens_to_ids(t) for t in model.token_ids}
    ids = ref_set['tok'].encode('x <Phrase>a b</Phrase>(<Unit>box</Unit>[0]<REF>[1]<REF>), <Phrase>c</Phrase>'
                                '(<Unit>keypoint</Unit>[0]<REF>)', add_special_tokens=False)
    lay = ref_layout(ids, model.token_ids, ref_set['tok'].decode)
    assert lay.groups == [0, 0, 1] and lay.units == ['box', 'box', 'keypoint']
    assert [ids[p] for p in lay.positions] == [model.token_ids['<REF>']] * 3


def test_loss_routes_units_and_masks_others(model, ref_set):
    ds = ref_set['train']
    idx = _pick(ds, 'det', 2) + _pick(ds, 'kpt', 1) + _pick(ds, 'gcap', 1)
    data = model.data_preprocessor(pseudo_collate([ds[i] for i in idx]), True)
    model.train()
    losses = model(**data, mode='loss')
    assert {'loss_llm', 'loss_box', 'loss_keypoint'} <= set(losses)
    assert all(torch.isfinite(v) for v in losses.values())
    model.zero_grad()
    sum(v for k, v in losses.items() if k.startswith('loss')).backward()
    assert model.ref_decoders['box'].ref_proj.layers[0].weight.grad.abs().sum() > 0
    assert model.ref_decoders['keypoint'].kpt_head.layers[-1].weight.grad.abs().sum() > 0  # pointer: zero-init last
    assert model.embed_tokens.weight.grad[model.token_ids['<REF>']].abs().sum() > 0
    # only box samples: the keypoint decoder sees nothing (zero loss, zero but present gradients)
    data = model.data_preprocessor(pseudo_collate([ds[i] for i in _pick(ds, 'det', 2)]), True)
    losses = model(**data, mode='loss')
    assert isinstance(losses['loss_keypoint'], torch.Tensor) and losses['loss_keypoint'] == 0
    model.parse_losses(losses)  # what the train loop does with them (a float loss raised here)
    batch = model.prepare_batch(data['inputs'], data['data_samples'])
    hidden = model.run_llm(batch).hidden_states
    assert model.collect_queries(batch, hidden, data['data_samples'], 'keypoint', True) is None
    q = model.collect_queries(batch, hidden, data['data_samples'], 'box', True)
    lay = ref_layout(batch.input_ids[0].tolist(), model.token_ids, ref_set['tok'].decode)
    assert torch.equal(q.states[0, :len(lay.positions)], hidden[0, lay.positions])


def test_predict_parses_and_returns_pixel_boxes(model, ref_set, monkeypatch):
    ds = ref_set['val']
    idx = _pick(ds, 'rec', 1) + _pick(ds, 'kpt', 1)
    samples = [ds[i] for i in idx]
    gold = [json.loads(ref_set['out']['val'].read_text())[0]]  # any answer text works for the plumbing
    answers = ['<Phrase>red circle</Phrase>(<Unit>box</Unit>[0]<REF>)<|im_end|>',
               '<Phrase>blue star</Phrase>(<Unit>keypoint</Unit>[0]<REF>[1]<REF>)<|im_end|>']
    rows = [ref_set['tok'].encode(a, add_special_tokens=False) for a in answers]
    monkeypatch.setattr(model, 'generate_ids', lambda batch, **kw: rows)
    model.eval()
    out = model(**model.data_preprocessor(pseudo_collate(samples), False), mode='predict')
    assert gold and out[0].parse_error is None and out[0].pred_text == answers[0][:-len('<|im_end|>')]
    h, w = out[0].metainfo['ori_shape']
    b = out[0].pred_instances.bboxes
    assert b.shape == (1, 4) and (b[:, 2] >= b[:, 0]).all() and b[:, 0::2].min() >= -w and b.max() <= 2 * max(h, w)
    assert out[1].pred_triplets[0]['unit'] == 'keypoint' and out[1].pred_triplets[0]['keypoints'].shape == (2, 5, 3)
    assert out[1].pred_instances.keypoints.shape == (2, 5, 3)
    monkeypatch.setattr(model, 'generate_ids', lambda batch, **kw: [rows[0][:3], rows[1][:-4]])
    out = model(**model.data_preprocessor(pseudo_collate(samples), False), mode='predict')
    assert all(o.parse_error for o in out) and all(len(o.pred_instances.bboxes) == 0 for o in out)


def test_recipe_configs():
    from mmengine.config import Config

    from llmvision.registry import MODELS
    cfg = Config.fromfile('configs/ref_vlm/ref_vlm_vicuna_7b_stage2.py')
    box = cfg.model.decoders.box
    assert (box.num_layers, box.embed_dims, box.num_heads, box.ffn_dim, box.num_queries) == (6, 256, 8, 2048, 100)
    assert cfg.optim_wrapper.optimizer.lr == 2e-6 and cfg.optim_wrapper.clip_grad.max_norm == 1.0
    assert cfg.train_cfg.max_epochs == 1 and cfg.param_scheduler[0].end == pytest.approx(0.03)
    assert cfg.model.loss_weights == dict(llm=1.0, box=0.5) and cfg.model.visual_features.out_indices == (0, 1, 2)
    with pytest.raises(FileNotFoundError, match='never downloads'):
        MODELS.build(cfg.model)
    assert box.get('anchor', 'none') == 'none'  # REF-VLM's plain box head
    tiny = Config.fromfile('configs/ref_vlm/ref_vlm_tiny_synthetic.py')
    assert tiny.model.loss_weights == dict(llm=1.0, box=0.5, keypoint=1.0)
    assert tiny.model.decoders.box.anchor == tiny.model.decoders.keypoint.anchor == 'pointer'
    assert tiny.train_cfg.max_iters == 2000


def test_ref_vlm_chat_returns_pixel_triplets(model, ref_set, synthetic_data, monkeypatch):
    from mmengine.config import Config

    from llmvision.apis.ref_vlm_chat import ref_vlm_chat
    enc = ConversationEncoder(ref_set['tok'], 'chatml', max_length=256, system='')
    monkeypatch.setattr(model, 'cfg', Config(dict(test_dataloader=dict(dataset=dict(encoder=None, image_size=SIZE)))),
                        raising=False)
    monkeypatch.setattr(model, 'conversation_encoder', enc, raising=False)
    row = ref_set['tok'].encode('<Phrase>red circle</Phrase>(<Unit>box</Unit>[0]<REF>)<|im_end|>',
                                add_special_tokens=False)
    monkeypatch.setattr(model, 'generate_ids', lambda batch, **kw: [row])
    model.eval()
    answer, triplets = ref_vlm_chat(model, str(synthetic_data.image_dir / 'val_000000.png'), 'Where is the red circle?')
    assert answer.startswith('<Phrase>red circle</Phrase>') and triplets[0]['phrase'] == 'red circle'
    box = triplets[0]['bboxes'][0]
    assert box[2] >= box[0] and -64 <= box[0] <= 320 + 64  # the synthetic image is 320 wide: pixels, not [0, 1]
    assert box[2] - box[0] > 1.0
