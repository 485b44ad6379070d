"""GroundingDINO 'loss' mode: it learns, gradients reach every trainable parameter (DN on and off),
zero-box images, mixed image sizes, and clear errors for prompts without phrases."""
import pytest
import torch
from mmengine.structures import InstanceData

from helpers import WORDS, astronaut, our_tiny_model, sample
from llmvision.models.language import write_bert_vocab

DN = dict(label_noise_scale=0.5, box_noise_scale=1.0, group_cfg=dict(dynamic=True, num_dn_queries=20))


@pytest.fixture(scope='module')
def vocab(tmp_path_factory):
    return write_bert_vocab(str(tmp_path_factory.mktemp('vocab')), WORDS)


def batch(sizes=((96, 96), (96, 96)), boxes=((2,), (1,))):
    """Padded images and samples: image i has ``boxes[i][0]`` gt boxes of the caption's phrases."""
    hp, wp = max(s[0] for s in sizes), max(s[1] for s in sizes)
    pixels = torch.zeros(len(sizes), 3, hp, wp)
    samples = []
    caption = 'a woman with red hair . rocket .'
    spans = [[[2, 7]], [[24, 30]]]
    for i, (h, w) in enumerate(sizes):
        pixels[i, :, :h, :w] = astronaut((h, w))[0]
        s = sample(caption, (h, w), (hp, wp), tokens_positive=spans)
        n = boxes[i][0]
        gt = torch.tensor([[0.2 * w, 0.1 * h, 0.7 * w, 0.9 * h], [0.05 * w, 0.5 * h, 0.3 * w, 0.95 * h]])[:n]
        s.gt_instances = InstanceData(bboxes=gt, labels=torch.arange(n))
        samples.append(s)
    return pixels, samples


def _train(model, pixels, samples, steps):
    opt = torch.optim.AdamW([p for p in model.parameters() if p.requires_grad], lr=5e-4)
    totals = []
    for _ in range(steps):
        losses = model(pixels, samples, mode='loss')
        total = sum(losses.values())
        opt.zero_grad()
        total.backward()
        opt.step()
        totals.append(total.item())
    return totals, losses


@pytest.mark.parametrize('dn', [True, False])
def test_grads_reach_all_params(vocab, dn):
    torch.manual_seed(0)
    model = our_tiny_model(vocab, dn_cfg=DN if dn else None, num_queries=30).train()
    pixels, samples = batch()
    losses = model(pixels, samples, mode='loss')
    assert any(k.startswith('dn_') for k in losses) == dn
    assert {'loss_cls', 'loss_bbox', 'loss_iou', 'enc_loss_cls', 'd0.loss_cls'} <= set(losses)
    # one step first: zero-initialised layers (last box layers, MSDA offsets/weights) block the
    # gradient of what feeds them at step 0, exactly as in mmdet
    _train(model, pixels, samples, steps=1)
    model.zero_grad()
    losses, out = model.loss_with_outputs(pixels, samples)
    sum(losses.values()).backward()
    no_grad = [n for n, p in model.named_parameters() if p.requires_grad and p.grad is None]
    assert no_grad == []
    # every non-embedding tensor gets a non-zero gradient (embedding tables only on used rows)
    zero = [n for n, p in model.named_parameters()
            if p.requires_grad and 'embeddings' not in n and p.grad.abs().sum() == 0]
    assert zero == []
    assert len(out.last_layer_assign) == 2 and len(out.gt_labels) == 2
    assert not hasattr(model, 'last_outputs')


@pytest.mark.slow
@pytest.mark.parametrize('dn', [True, False])
def test_loss_learns(vocab, dn):
    torch.manual_seed(0)
    model = our_tiny_model(vocab, dn_cfg=DN if dn else None, num_queries=30).train()
    pixels, samples = batch()
    torch.manual_seed(1)
    totals, _ = _train(model, pixels, samples, steps=20)
    assert sum(totals[-3:]) / 3 < 0.8 * totals[0], totals


def test_zero_box_images(vocab):
    torch.manual_seed(0)
    model = our_tiny_model(vocab, dn_cfg=DN, num_queries=30).train()
    for boxes in (((0,), (2,)), ((0,), (0,))):
        pixels, samples = batch(boxes=boxes)
        losses = model(pixels, samples, mode='loss')
        total = sum(losses.values())
        assert torch.isfinite(total)
        total.backward()
        model.zero_grad()


def test_negative_caption_without_phrases_trains(vocab):
    """An image without objects whose caption names none (the synthetic set has them) is a pure
    negative in training: no error, and its token scores are pushed down."""
    torch.manual_seed(0)
    model = our_tiny_model(vocab, dn_cfg=DN, num_queries=30).train()
    pixels, samples = batch(boxes=((0,), (2,)))
    samples[0].set_metainfo(dict(text='a woman in space .', tokens_positive=[]))
    losses = model(pixels, samples, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())
    sum(losses.values()).backward()
    # only-negative batch: the class loss alone drives the token logits of image 0 down
    pixels, samples = batch(boxes=((0,), (0,)))
    for s in samples:
        s.set_metainfo(dict(text='a woman in space .', tokens_positive=[]))
    model.zero_grad()
    _, first = _train(model, pixels, samples, 1)
    _, last = _train(model, pixels, samples, 15)
    assert last['loss_cls'] < first['loss_cls']
    # with boxes, a caption without phrases is still an error (see below)


def test_mixed_sizes_batch(vocab):
    torch.manual_seed(0)
    model = our_tiny_model(vocab, dn_cfg=DN, num_queries=30).train()
    pixels, samples = batch(sizes=((96, 128), (64, 80)))
    assert pixels.shape[-2:] == (96, 128)
    losses = model(pixels, samples, mode='loss')
    assert all(torch.isfinite(v) for v in losses.values())


def test_text_without_phrases_is_a_clear_error(vocab):
    model = our_tiny_model(vocab, num_queries=30).train()
    pixels, samples = batch()
    samples[1].set_metainfo(dict(text='   ', tokens_positive=None))
    with pytest.raises(ValueError, match=r'data_samples\[1\].*caption is empty'):
        model(pixels, samples, mode='loss')
    pixels, samples = batch()
    samples[0].set_metainfo(dict(tokens_positive=[]))
    with pytest.raises(ValueError, match=r'data_samples\[0\].*no phrases'):
        model(pixels, samples, mode='loss')
    pixels, samples = batch()
    samples[0].set_metainfo(dict(text=[]))
    with pytest.raises(ValueError, match='category list is empty'):
        model(pixels, samples, mode='loss')
    pixels, samples = batch()
    samples[0].gt_instances.labels = torch.tensor([0, 5])
    with pytest.raises(ValueError, match='gt label 5 has no entity'):
        model(pixels, samples, mode='loss')


def test_encoder_gradient_checkpointing_gives_the_same_gradients(vocab):
    """``encoder.num_cp`` recomputes layers in backward: same loss and gradients, no dropout drift."""
    grads = {}
    for num_cp in (0, -1):
        torch.manual_seed(0)
        model = our_tiny_model(vocab, num_queries=30).train()
        model.encoder.num_cp = len(model.encoder.layers) if num_cp < 0 else num_cp
        for fusion in model.encoder.fusion_layers:  # dropout on: the RNG must be replayed
            fusion.train()
        pixels, samples = batch()
        calls, layer = [], model.encoder._layer
        model.encoder._layer = lambda i, *a: calls.append(i) or layer(i, *a)
        torch.manual_seed(1)
        total = sum(model(pixels, samples, mode='loss').values())
        total.backward()
        layers = len(model.encoder.layers)  # checkpointed layers run again in backward
        assert len(calls) == (layers if num_cp == 0 else 2 * layers), calls
        grads[num_cp] = (total.detach(), {n: p.grad.clone() for n, p in model.named_parameters()
                                          if p.grad is not None and n.startswith('encoder.')})
    assert torch.allclose(grads[0][0], grads[-1][0], rtol=1e-5)
    assert grads[0][1].keys() == grads[-1][1].keys() and grads[0][1]
    for name, g in grads[0][1].items():
        assert torch.allclose(g, grads[-1][1][name], rtol=1e-4, atol=1e-6), name
