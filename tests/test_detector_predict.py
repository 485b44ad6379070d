"""GroundingDINO 'predict': entity scores, top-k, boxes in the original image, chunked prompts, REC."""
import pytest
import torch

from helpers import WORDS, astronaut, our_tiny_model, sample
from llmvision.models.detectors import entity_scores, predict_instances
from llmvision.models.language import write_bert_vocab

NAMES = [f'{a} {b}' for a in WORDS[:9] for b in WORDS[9:14]]  # 45 two-word names


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    torch.manual_seed(0)
    vocab = write_bert_vocab(str(tmp_path_factory.mktemp('vocab')), WORDS)
    m = our_tiny_model(vocab, num_queries=20, test_cfg=dict(max_per_img=50, chunked_size=40)).eval()
    with torch.no_grad():  # make the box heads non-trivial
        for reg in m.reg_branches:
            reg.layers[-1].weight.normal_(0, 0.05)
    return m


def test_entity_scores_mean_of_token_probabilities():
    logits = torch.randn(3, 8)
    maps = torch.zeros(2, 256)
    maps[0, [1, 2]] = 1
    maps[1, 5] = 1
    got = entity_scores(logits, maps)
    p = logits.sigmoid()
    assert torch.allclose(got, torch.stack([(p[:, 1] + p[:, 2]) / 2, p[:, 5]], 1))


def test_predict_instances_rescales_to_original():
    logits = torch.full((4, 10), -10.0)
    logits[2, 3] = 5.0
    boxes = torch.tensor([[0.5, 0.5, 0.2, 0.2]]).repeat(4, 1)
    boxes[2] = torch.tensor([0.25, 0.5, 0.5, 1.0])
    maps = torch.zeros(2, 256)
    maps[1, 3] = 1
    maps[0, 1] = 1
    meta = dict(img_shape=(100, 200), ori_shape=(50, 100), scale_factor=(2.0, 2.0))
    res = predict_instances(logits, boxes, maps, meta, max_per_img=5, label_offset=40)
    assert len(res) == 5 and res.scores[0] == torch.sigmoid(torch.tensor(5.0))
    assert res.labels[0] == 41 and res.query_index[0] == 2
    assert torch.allclose(res.bboxes[0], torch.tensor([0.0, 0.0, 50.0, 50.0]))
    assert torch.all(res.scores[:-1] >= res.scores[1:])
    top = predict_instances(logits, boxes, maps, meta, top1=True)
    assert len(top) == 1 and top.labels[0] == 1


def test_predict_boxes_and_chunks(model):
    pixels = torch.zeros(2, 3, 96, 112)
    pixels[0] = astronaut((96, 112))[0]
    pixels[1, :, :64, :80] = astronaut((64, 80))[0]
    samples = [sample(NAMES, (96, 112), (96, 112), ori_shape=(192, 224), scale_factor=(0.5, 0.5)),
               sample(NAMES, (64, 80), (96, 112), ori_shape=(64, 80), scale_factor=(1.0, 1.0))]
    out = model(pixels, samples, mode='predict')
    for s, (h, w) in zip(out, [(192, 224), (64, 80)]):
        pred = s.pred_instances
        assert len(pred) == 100  # 2 chunks x max_per_img
        assert pred.labels.max() >= 40 and pred.labels.min() >= 0 and pred.labels.max() < 45
        b = pred.bboxes
        assert (b[:, 0] >= 0).all() and (b[:, 2] <= w + 1e-4).all() and (b[:, 3] <= h + 1e-4).all()
        assert (b[:, 2] >= b[:, 0]).all() and (b[:, 3] >= b[:, 1]).all()
    # the first chunk equals a run with only its 40 names (image features shared across chunks)
    alone = [sample(NAMES[:40], (96, 112), (96, 112), ori_shape=(192, 224), scale_factor=(0.5, 0.5)),
             sample(NAMES[:40], (64, 80), (96, 112), ori_shape=(64, 80), scale_factor=(1.0, 1.0))]
    ref = model(pixels, alone, mode='predict')
    for s, r in zip(out, ref):
        assert torch.allclose(s.pred_instances.scores[:50], r.pred_instances.scores, atol=1e-6)
        assert torch.allclose(s.pred_instances.bboxes[:50], r.pred_instances.bboxes, atol=1e-4)


def test_predict_rec_top1(model):
    pixels = astronaut((96, 96))
    s = sample('the woman with red hair', (96, 96), (96, 96), rec=True)
    out = model(pixels, [s], mode='predict')[0].pred_instances
    assert len(out) == 1 and out.labels.tolist() == [0]
