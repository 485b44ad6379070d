"""LLaVAModel vs transformers' LlavaForConditionalGeneration on the same tiny random weights (issue 12's
done-when): logits of a right-padded batch mixing an image sample, a two-image sample and a text-only
sample; the loss; greedy and beam generation of a left-padded batch."""
import pytest
import torch
from transformers import CLIPVisionConfig, LlamaConfig, LlavaConfig, LlavaForConditionalGeneration, Qwen2Config

from llmvision.checkpoint.llava_hf import convert_llava_hf, fit_vision_prefix
from llmvision.models.lmm import LLaVAModel, vision_model_from_config
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX, LMMDataSample
from llmvision.utils.hf_builder import causal_lm_from_config

VOCAB, HF_IMAGE_ID, PAD = 96, 95, 0
NUM_VIS = 4          # (28 / 14) ** 2 patch tokens
PROMPTS = [[5, 6, IMAGE_TOKEN_INDEX, 7, 8, 9],                              # one image
           [10, IMAGE_TOKEN_INDEX, 11, 12, IMAGE_TOKEN_INDEX, 13],          # two images
           [14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 26, 27, 28]]     # text only (longest)


def build_pair(text: str, vision_feature_layer: int = -2):
    """(transformers LLaVA, our LLaVAModel with its weights converted by checkpoint/llava_hf.py)."""
    torch.manual_seed(0)
    vision = CLIPVisionConfig(image_size=28, patch_size=14, hidden_size=32, intermediate_size=64,
                              num_hidden_layers=2, num_attention_heads=4)
    common = dict(vocab_size=VOCAB, hidden_size=64, intermediate_size=128, num_hidden_layers=2,
                  num_attention_heads=4, num_key_value_heads=2, tie_word_embeddings=False,
                  initializer_range=0.1)
    text_cfg = Qwen2Config(**common) if text == 'qwen2' else LlamaConfig(**common)
    hf = LlavaForConditionalGeneration(LlavaConfig(
        vision_config=vision, text_config=text_cfg, image_token_id=HF_IMAGE_ID,
        vision_feature_layer=-2, vision_feature_select_strategy='default', projector_hidden_act='gelu')).eval()
    ours = LLaVAModel(vision_encoder=dict(type=vision_model_from_config, config=hf.config.vision_config),
                      llm=dict(type=causal_lm_from_config, config=hf.config.text_config),
                      vision_feature_layer=vision_feature_layer).eval()
    state, report = convert_llava_hf(hf.state_dict())
    assert not report.unconverted
    missing, unexpected = ours.load_state_dict(fit_vision_prefix(state, ours.state_dict().keys()), strict=False)
    assert not unexpected and not [k for k in missing if not k.endswith(('inv_freq', 'position_ids'))]
    return hf, ours


def samples(prompts, with_labels: bool):
    out = []
    for ids in prompts:
        ids = torch.tensor(ids)
        ds = LMMDataSample(metainfo=dict(num_images=int((ids == IMAGE_TOKEN_INDEX).sum())))
        ds.input_ids = ids
        if with_labels:   # supervise the last three tokens
            labels = torch.full_like(ids, IGNORE_INDEX)
            labels[-3:] = ids[-3:]
            ds.labels = labels
        out.append(ds)
    return out


def hf_inputs(prompts, side: str, with_labels: bool = False):
    """input_ids with each image placeholder repeated NUM_VIS times (HF's convention), padded on ``side``."""
    seqs, labs = [], []
    for ids in prompts:
        seq, lab = [], []
        for j, t in enumerate(ids):
            if t == IMAGE_TOKEN_INDEX:
                seq += [HF_IMAGE_ID] * NUM_VIS
                lab += [IGNORE_INDEX] * NUM_VIS
            else:
                seq.append(t)
                lab.append(t if j >= len(ids) - 3 else IGNORE_INDEX)
        seqs.append(seq)
        labs.append(lab)
    length = max(map(len, seqs))
    ids = torch.full((len(seqs), length), PAD)
    mask = torch.zeros_like(ids)
    labels = torch.full_like(ids, IGNORE_INDEX)
    for i, (s, lb) in enumerate(zip(seqs, labs)):
        sl = slice(0, len(s)) if side == 'right' else slice(length - len(s), length)
        ids[i, sl], mask[i, sl], labels[i, sl] = torch.tensor(s), 1, torch.tensor(lb)
    return dict(input_ids=ids, attention_mask=mask, **(dict(labels=labels) if with_labels else {}))


def pixels(n=3):
    return torch.randn(n, 3, 28, 28, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize('text', ['qwen2', 'llama'])
def test_forward_logits_and_loss_match_transformers(text):
    hf, ours = build_pair(text)
    pix = pixels()
    with torch.no_grad():
        ref = hf(pixel_values=pix, **hf_inputs(PROMPTS, 'right', with_labels=True))
        out = ours(pix, samples(PROMPTS, True), mode='tensor')
        loss = ours(pix, samples(PROMPTS, True), mode='loss')['loss']
    mask = out['attention_mask'].bool()
    assert out['logits'].shape == ref.logits.shape
    assert torch.equal(mask, hf_inputs(PROMPTS, 'right')['attention_mask'].bool())
    diff = (out['logits'] - ref.logits)[mask].abs().max().item()
    assert diff < 1e-4, diff
    assert ref.logits[mask].std() > 0.1          # logits are not trivially small
    assert torch.equal(out['labels'], hf_inputs(PROMPTS, 'right', with_labels=True)['labels'])
    assert abs(loss.item() - ref.loss.item()) < 1e-5


def test_parity_test_can_fail():
    """Negative control: the last vision layer instead of -2 changes the logits well beyond the tolerance."""
    hf, ours = build_pair('qwen2', vision_feature_layer=-1)
    pix = pixels()
    with torch.no_grad():
        ref = hf(pixel_values=pix, **hf_inputs(PROMPTS, 'right')).logits
        out = ours(pix, samples(PROMPTS, False), mode='tensor')
    mask = out['attention_mask'].bool()
    assert (out['logits'] - ref)[mask].abs().max() > 1e-2


def hf_merged_embeds(hf, prompts, pix):
    """Left-padded ``inputs_embeds`` merged by transformers' own LLaVA code (image features scattered)."""
    inp = hf_inputs(prompts, 'left')
    emb = hf.get_input_embeddings()(inp['input_ids'])
    feats = hf.model.get_image_features(pixel_values=pix, vision_feature_layer=-2,
                                        vision_feature_select_strategy='default').pooler_output
    feats = torch.cat(list(feats)).reshape(-1, emb.shape[-1])
    emb = emb.masked_scatter((inp['input_ids'] == HF_IMAGE_ID)[..., None].expand_as(emb), feats)
    return dict(inputs_embeds=emb, attention_mask=inp['attention_mask'])


def assert_same_tokens(rows, ref, eos):
    for got, want in zip(rows, ref):
        want = want[:want.index(eos) + 1] if eos in want else want
        assert got == want
    assert any(len(r) > 1 for r in rows)


@pytest.mark.parametrize('text', ['qwen2', 'llama'])
def test_greedy_generation_matches_transformers(text):
    hf, ours = build_pair(text)
    pix, eos = pixels(), 7
    with torch.no_grad():
        inp = hf_inputs(PROMPTS, 'left')
        ref = hf.generate(pixel_values=pix, **inp, max_new_tokens=6, do_sample=False, eos_token_id=eos,
                          pad_token_id=PAD)
        batch = ours.prepare_batch(pix, samples(PROMPTS, False), padding_side='left')
        rows = ours.generate_ids(batch, max_new_tokens=6, num_beams=1, eos_token_ids=[eos])
    assert_same_tokens(rows, ref[:, inp['input_ids'].shape[1]:].tolist(), eos)


def test_beam_generation_matches_transformers():
    """Beam search vs transformers' beam search on the same merged embeddings. (transformers'
    ``LlavaForConditionalGeneration.generate(num_beams>1)`` itself gives a two-image sample its first image
    twice: it repeats ``pixel_values`` per beam before scattering, so it is not the reference here.)"""
    hf, ours = build_pair('qwen2')
    pix, eos = pixels(), 7
    with torch.no_grad():
        ref = hf.generate(**hf_merged_embeds(hf, PROMPTS, pix), max_new_tokens=6, do_sample=False, num_beams=3,
                          eos_token_id=eos, pad_token_id=PAD)
        batch = ours.prepare_batch(pix, samples(PROMPTS, False), padding_side='left')
        rows = ours.generate_ids(batch, max_new_tokens=6, num_beams=3, eos_token_ids=[eos])
        greedy = ours.generate_ids(batch, max_new_tokens=6, num_beams=1, eos_token_ids=[eos])
    assert_same_tokens(rows, ref.tolist(), eos)
    assert rows != greedy              # beam search found other sequences than greedy here
