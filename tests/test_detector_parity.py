"""THE key test: our GroundingDINO == transformers' MMGroundingDinoForObjectDetection on the same
(random, perturbed) weights, a real image and real text, to 1e-4 in fp32.

A tiny config (Swin 24-d, BERT 32-d, d_model 64, 2+2 layers, 50 queries) is built offline in
transformers, its state dict converted with ``convert_hf_grounding_dino``, and encoder outputs,
every decoder layer's hidden states / reference boxes, the encoder proposals and the final
logits / boxes are compared. The text encoder uses transformers' delimiter-position convention
(``position_convention='hf'``) and the decoder its logit eps (``refine_eps=1e-5``) so the
comparison is exact; released checkpoints use the mmdet convention (our default).

transformers 5.18 has a dtype bug: ``encode_sinusoidal_position_embedding`` casts the text
position encoding back to the dtype of the (long) position ids, truncating every sin/cos value to
an integer, so phrases of more than one token get a wrong text position embedding. The fixture
patches that one function to encode float positions (what the original Grounding-DINO / mmdet do);
the rest of the transformers forward runs untouched.
"""
import pytest
import torch

from helpers import BERT_HIDDEN, D_MODEL, LAYERS, QUERIES, WORDS, astronaut, our_tiny_model, sample
from llmvision.checkpoint import convert_hf_grounding_dino, load_converted
from llmvision.models.language import write_bert_vocab


def hf_tiny_model():
    from transformers import BertConfig, MMGroundingDinoConfig, MMGroundingDinoForObjectDetection, SwinConfig
    swin = SwinConfig(embed_dim=24, depths=[1, 1, 2, 1], num_heads=[1, 2, 3, 4], window_size=7,
                      out_indices=[2, 3, 4])
    bert = BertConfig(vocab_size=1100, hidden_size=BERT_HIDDEN, num_hidden_layers=2,
                      num_attention_heads=2, intermediate_size=64, max_position_embeddings=64)
    cfg = MMGroundingDinoConfig(backbone_config=swin, text_config=bert, num_queries=QUERIES,
                                encoder_layers=LAYERS, decoder_layers=LAYERS, d_model=D_MODEL,
                                encoder_ffn_dim=128, decoder_ffn_dim=128, encoder_attention_heads=4,
                                decoder_attention_heads=4)
    torch.manual_seed(0)
    model = MMGroundingDinoForObjectDetection(cfg).eval()
    with torch.no_grad():
        for name, p in model.named_parameters():  # shared (tied) tensors are visited once
            p.add_(torch.randn_like(p) * (0.3 if name.endswith(('vision_param', 'text_param')) else 0.05))
    return model


@pytest.fixture(scope='module')
def models(tmp_path_factory):
    from transformers.models.mm_grounding_dino import modeling_mm_grounding_dino as hf_mod
    original = hf_mod.encode_sinusoidal_position_embedding
    patch = pytest.MonkeyPatch()
    patch.setattr(hf_mod, 'encode_sinusoidal_position_embedding',
                  lambda pos, *a, **k: original(pos.float(), *a, **k))
    vocab = write_bert_vocab(str(tmp_path_factory.mktemp('vocab')), WORDS)
    hf = hf_tiny_model()
    ours = our_tiny_model(vocab).eval()
    converted, report = convert_hf_grounding_dino(hf.state_dict())
    assert report.unconverted == []
    rep = load_converted(ours, converted, report)
    assert rep.ok, rep.summary()
    yield hf, ours
    patch.undo()


def _max_diff(a, b):
    finite = torch.isfinite(a) & torch.isfinite(b)
    assert torch.equal(torch.isfinite(a), torch.isfinite(b))
    return (a[finite] - b[finite]).abs().max().item()


def _compare(hf, ours, pixels, pixel_mask, samples, captions):
    tok = ours.text_encoder.tokenize(captions)
    with torch.no_grad():
        ref = hf(pixel_values=pixels, input_ids=tok['input_ids'], attention_mask=tok['attention_mask'],
                 token_type_ids=tok['token_type_ids'], pixel_mask=pixel_mask)
        out = ours._forward_tensor(pixels, samples)
    assert _max_diff(ref.encoder_last_hidden_state_vision, out.memory) < 1e-4
    assert _max_diff(ref.encoder_last_hidden_state_text, out.memory_text) < 1e-4
    assert _max_diff(ref.enc_outputs_class, out.enc_outputs_class) < 1e-4
    assert _max_diff(ref.enc_outputs_coord_logits, out.enc_outputs_coord_unact) < 1e-4
    assert _max_diff(ref.init_reference_points, out.references[0]) < 1e-4
    for layer in range(LAYERS):
        assert _max_diff(ref.intermediate_hidden_states[:, layer], out.hidden_states[layer]) < 1e-4
        assert _max_diff(ref.intermediate_reference_points[:, layer], out.references[layer + 1]) < 1e-4
    assert _max_diff(ref.logits, out.all_cls_scores[-1]) < 1e-4
    assert _max_diff(ref.pred_boxes, out.all_bbox_preds[-1]) < 1e-4
    return ref, out


def test_parity_single_image(models):
    hf, ours = models
    pixels = astronaut((160, 192))
    captions = ['woman . rocket . flag .']
    samples = [sample(['woman', 'rocket', 'flag'], (160, 192), (160, 192))]
    ref, out = _compare(hf, ours, pixels, None, samples, captions)
    assert out.all_cls_scores.shape == (LAYERS, 1, QUERIES, 256)
    # the comparison is not vacuous: logits vary across queries and tokens
    assert ref.logits[0, :, :5].std() > 1e-2


def test_parity_padded_batch(models):
    """Two images of different sizes padded into one batch, captions of different lengths."""
    hf, ours = models
    a = astronaut((160, 192))
    b = astronaut((128, 144))
    pixels = torch.zeros(2, 3, 160, 192)
    pixels[0] = a[0]
    pixels[1, :, :128, :144] = b[0]
    mask = torch.zeros(2, 160, 192, dtype=torch.long)
    mask[0] = 1
    mask[1, :128, :144] = 1
    captions = ['a woman with red hair .', 'dog . cat . remote control .']
    samples = [sample(captions[0], (160, 192), (160, 192)),
               sample(['dog', 'cat', 'remote control'], (128, 144), (160, 192))]
    _compare(hf, ours, pixels, mask, samples, captions)


def test_converter_reports_unknown_keys(models):
    hf, _ = models
    sd = dict(hf.state_dict())
    sd['model.encoder.layers.0.fusion_layer.mystery.weight'] = torch.zeros(1)
    _, report = convert_hf_grounding_dino(sd)
    assert report.unconverted == ['model.encoder.layers.0.fusion_layer.mystery.weight']
