"""LLMDet's REC test-time heuristic: first noun phrase as the entity, left/right/top/bottom re-scoring."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import WORDS, astronaut, our_tiny_model, sample
from llmvision.models.detectors import rec_heuristic as rh
from llmvision.models.detectors.rec_heuristic import RecHeuristic, spatial_bias, spatial_directions
from llmvision.models.language import write_bert_vocab
from llmvision.utils import noun_phrases as nps

H, W = 100, 200
# centres: x = 20, 60, 100, 140, 180 (of 200); y = 90, 70, 50, 30, 10 (of 100)
BOXES = torch.tensor([[10., 80., 30., 100.], [50., 60., 70., 80.], [90., 40., 110., 60.],
                      [130., 20., 150., 40.], [170., 0., 190., 20.]])
SCORES = torch.tensor([0.50, 0.55, 0.60, 0.52, 0.48])


def llmdet_reference(bboxes, scores, text, h, w):
    """The original LLMDet ``is_rec_task`` branch, written out for comparison."""
    bias = 0
    if 'left' in text:
        bias = bias + (1 - (bboxes[:, 2] + bboxes[:, 0]) / 2 / w) * 0.7 + 1
    if 'right' in text:
        bias = bias + (bboxes[:, 2] + bboxes[:, 0]) / 2 / w * 0.7 + 1
    if 'top' in text or 'upper' in text:
        bias = bias + (1 - (bboxes[:, 3] + bboxes[:, 1]) / 2 / h) * 0.7 + 1
    if 'under' in text or 'bottom' in text:
        bias = bias + (bboxes[:, 3] + bboxes[:, 1]) / 2 / h * 0.7 + 1
    new, inds = torch.sort(scores + bias, descending=True)
    return new, bboxes[inds]


def preds():
    p = InstanceData()
    p.bboxes, p.scores = BOXES.clone(), SCORES.clone()
    p.labels = torch.tensor([0, 1, 0, 1, 0])
    p.query_index = torch.arange(5)
    return p


META = dict(ori_shape=(H, W), img_shape=(H // 2, W // 2))


@pytest.mark.parametrize('text,best', [
    ('man on the left', 0), ('leftmost man', 0), ('guy at right', 4), ('rightmost guy', 4),
    ('top banana', 4), ('upper shelf', 4), ('topmost box', 4),
    ('bottom cup', 0), ('cup under the table', 0), ('bottommost cup', 0),
    ('top left', 2), ('bottom right', 2)])
def test_rescore_matches_llmdet(text, best):
    out = RecHeuristic().rescore(preds(), dict(META, text=text))
    ref_scores, ref_boxes = llmdet_reference(BOXES, SCORES, text, H, W)
    assert torch.allclose(out.scores, ref_scores) and torch.equal(out.bboxes, ref_boxes)
    assert torch.equal(out.bboxes[0], BOXES[best])
    assert torch.equal(out.bboxes, BOXES[out.query_index])  # every field permuted alike
    assert (out.labels == 0).all() and torch.all(out.scores[:-1] >= out.scores[1:])


def test_directions_and_bias_values():
    assert spatial_directions('The man on the LEFT') == ['left']
    assert spatial_directions('upper left corner') == ['left', 'top']
    assert spatial_directions('bright lamp') == ['right']  # LLMDet's substring test
    assert spatial_directions('bright lamp', match='word') == []
    assert spatial_directions('laptop', match='word') == [] and spatial_directions('laptop') == ['top']
    assert spatial_directions('lower bunk') == []
    assert spatial_directions('lower bunk', words={'bottom': ('lower',)}) == ['bottom']
    bias = spatial_bias(BOXES, ['left', 'bottom'], (H, W))
    cx, cy = torch.tensor([.1, .3, .5, .7, .9]), torch.tensor([.9, .7, .5, .3, .1])
    assert torch.allclose(bias, (1 - cx) * 0.7 + 1 + cy * 0.7 + 1)


def test_no_spatial_word_keeps_order_and_scores():
    p = preds()
    p = p[p.scores.argsort(descending=True)]
    out = RecHeuristic().rescore(p.clone(), dict(META, text='a small dog'))
    assert torch.equal(out.scores, p.scores) and torch.equal(out.bboxes, p.bboxes)
    off = RecHeuristic(spatial_rescore=False).rescore(preds(), dict(META, text='dog on the left'))
    assert torch.equal(off.scores, SCORES.sort(descending=True)[0])


def test_topk_and_top1():
    # top-2 by detector score are boxes 2 (0.60) and 1 (0.55): 'left' picks 1 of those, not box 0
    out = RecHeuristic(topk=2).rescore(preds(), dict(META, text='left one'))
    assert len(out) == 2 and out.query_index.tolist() == [1, 2]
    top = RecHeuristic().rescore(preds(), dict(META, text='left one'), top1=True)
    assert len(top) == 1 and top.query_index.tolist() == [0]


def test_config_errors():
    assert RecHeuristic.from_cfg(None) is None and RecHeuristic.from_cfg(False) is None
    assert RecHeuristic.from_cfg(True) == RecHeuristic()
    with pytest.raises(KeyError, match='top_k'):
        RecHeuristic.from_cfg(dict(top_k=3))
    with pytest.raises(ValueError, match='match'):
        RecHeuristic.from_cfg(dict(match='regex'))
    with pytest.raises(ValueError, match='middle'):
        RecHeuristic.from_cfg(dict(words={'middle': ('centre',)}))
    with pytest.raises(ValueError, match='topk'):
        RecHeuristic.from_cfg(dict(topk=0))


def test_applies():
    h = RecHeuristic()
    assert h.applies(dict(text='a dog', rec=True), {})
    assert h.applies(dict(text='a dog'), dict(rec_top1=True))
    assert not h.applies(dict(text='a dog'), {})
    assert not h.applies(dict(text=['dog', 'cat'], rec=True), {})
    assert RecHeuristic(all_captions=True).applies(dict(text='a dog'), {})


def test_no_nltk_falls_back_to_whole_expression_with_one_warning(monkeypatch):
    logs = []
    monkeypatch.setattr(nps, 'nltk_available', lambda: False)
    monkeypatch.setattr(rh, '_WARNED', False)
    monkeypatch.setattr(rh, 'print_log', lambda msg, **kw: logs.append(msg))
    default = [[(0, 22)]]
    h = RecHeuristic()
    assert h.entity_spans('the woman on the left', default) is default
    assert h.entity_spans('a dog', default) is default
    assert len(logs) == 1 and 'averaged_perceptron_tagger_eng' in logs[0]
    # spatial re-scoring still applies
    assert RecHeuristic().rescore(preds(), dict(META, text='the woman on the left'),
                                  top1=True).query_index.tolist() == [0]


def test_nltk_present_uses_first_noun_phrase(monkeypatch):
    monkeypatch.setattr(nps, 'nltk_available', lambda: True)
    monkeypatch.setattr(nps, 'first_noun_phrase', lambda e: 'woman')
    default = [[(0, 30)]]
    text = 'the woman next to a woman with red hair'
    assert RecHeuristic().entity_spans(text, default) == [[(4, 9)], [(20, 25)]]  # every occurrence
    assert RecHeuristic(first_noun_phrase=False).entity_spans(text, default) is default
    monkeypatch.setattr(nps, 'first_noun_phrase', lambda e: 'rocket')  # not in the text
    assert RecHeuristic().entity_spans(text, default) is default
    monkeypatch.setattr(nps, 'first_noun_phrase', lambda e: None)  # no noun phrase
    assert RecHeuristic().entity_spans(text, default) is default


# ------------------------------------------------------------------ end to end
@pytest.fixture(scope='module')
def model(tmp_path_factory):
    torch.manual_seed(0)
    vocab = write_bert_vocab(str(tmp_path_factory.mktemp('vocab')), WORDS)
    m = our_tiny_model(vocab, num_queries=20, test_cfg=dict(max_per_img=30)).eval()
    with torch.no_grad():  # spread the boxes so that the spatial bias matters
        for reg in m.reg_branches:
            reg.layers[-1].weight.normal_(0, 0.2)
    return m


def _run(model, text, test_cfg, **meta):
    model.test_cfg = dict(dict(max_per_img=30, chunked_size=40, rec_top1=False), **test_cfg)
    pixels = astronaut((96, 128))
    s = sample(text, (96, 128), (96, 128), ori_shape=(192, 256), scale_factor=(0.5, 0.5), **meta)
    return model(pixels, [s], mode='predict')[0].pred_instances


def test_predict_end_to_end(model, monkeypatch):
    monkeypatch.setattr(nps, 'nltk_available', lambda: True)
    monkeypatch.setattr(nps, 'first_noun_phrase', lambda e: 'woman')
    text = 'the woman with red hair on the left'
    # off: the whole expression is the entity, plain top-1
    off = _run(model, text, {}, rec=True)
    assert len(off) == 1
    # the entity is the first noun phrase: same as giving its span as tokens_positive
    whole = _run(model, text, {})
    np_only = _run(model, text, dict(rec_heuristic=dict(spatial_rescore=False, all_captions=True)))
    explicit = _run(model, text, {}, tokens_positive=[[[4, 9]]])
    assert len(np_only) == 20 and not torch.allclose(np_only.scores, whole.scores)
    assert torch.allclose(np_only.scores, explicit.scores) and \
        torch.allclose(np_only.bboxes, explicit.bboxes)
    assert torch.allclose(off.scores, whole.scores[:1]) and torch.allclose(off.bboxes, whole.bboxes[:1])
    # all_captions (RefExp): every max_per_img prediction re-scored and sorted
    full = _run(model, text, dict(rec_heuristic=dict(all_captions=True)))
    ref_scores, ref_boxes = llmdet_reference(explicit.bboxes, explicit.scores, text, 192, 256)
    assert len(full) == 20 and torch.allclose(full.scores, ref_scores, atol=1e-6)
    assert torch.allclose(full.bboxes, ref_boxes)
    assert not torch.allclose(full.bboxes, explicit.bboxes)  # the spatial word changed the order
    # the same switched on by the sample's metainfo (a REC dataset's metainfo), which wins over test_cfg
    by_meta = _run(model, text, {}, rec_heuristic=dict(all_captions=True))
    assert torch.equal(by_meta.scores, full.scores) and torch.equal(by_meta.bboxes, full.bboxes)
    off_by_meta = _run(model, text, dict(rec_heuristic=dict(all_captions=True)), rec_heuristic=None)
    assert torch.equal(off_by_meta.scores, whole.scores)
    # a REC sample with the heuristic: top-1 after the re-sort
    on = _run(model, text, dict(rec_heuristic=dict()), rec=True)
    assert len(on) == 1 and torch.allclose(on.bboxes, full.bboxes[:1])
    assert on.labels.tolist() == [0]
    # not a REC sample and no all_captions: the heuristic leaves it alone
    plain = _run(model, text, dict(rec_heuristic=dict()))
    whole = _run(model, text, {})
    assert torch.equal(plain.scores, whole.scores) and torch.equal(plain.bboxes, whole.bboxes)
