"""LLMDet = tiny Grounding-DINO + LLM captioner on the synthetic set.

The region captions must come from the MATCHING queries of the last decoder layer (denoising
queries come first in the decoder output and must be skipped); inference never runs the LLM;
only LoRA / projectors / detector weights train while the base LLM stays bitwise unchanged.
"""
import pytest
import torch
from mmengine.runner import Runner

from llmvision.engine import load_config
from llmvision.models.detectors import GroundingDINO
from llmvision.registry import MODELS

CONFIG = 'configs/llmdet/llmdet_tiny_synthetic.py'


def _cfg(data, **extra):
    opts = {'train_dataloader.dataset.data_root': f'{data.root}/',
            'model.text_encoder.tokenizer': str(data.bert_tokenizer),
            'model.captioner.tokenizer': str(data.llm_tokenizer),
            'train_dataloader.batch_size': 3,
            'train_dataloader.dataset.pipeline.3.scales': [128]}
    opts.update(extra)
    return load_config(CONFIG, opts)


@pytest.fixture(scope='module')
def setup(synthetic_data):
    cfg = _cfg(synthetic_data)
    torch.manual_seed(0)
    model = MODELS.build(cfg.model).train()
    loader = Runner.build_dataloader(cfg.train_dataloader, seed=0)
    batches = []
    for b in loader:
        if all(len(s.gt_instances) for s in b['data_samples']):
            batches.append(b)
        if len(batches) == 3:
            break
    return cfg, model, batches


def test_region_captions_use_matching_queries_not_dn(setup):
    _, model, batches = setup
    assert model.dn_query_generator is not None
    seen = {}

    def capture(levels, queries, boxes, captions, phrases, valid_ratios=None):
        seen.update(levels=levels, queries=queries, boxes=boxes, captions=captions, phrases=phrases)
        zero = sum(p.sum() for p in model.captioner.parameters() if p.requires_grad) * 0
        return dict(loss_image_caption=zero, loss_region_caption=zero)

    returned = []

    def loss_with_outputs(*args):
        returned.append(GroundingDINO.loss_with_outputs(model, *args))
        return returned[-1]

    original = model.captioner.loss
    model.captioner.loss = capture
    model.loss_with_outputs = loss_with_outputs
    try:
        data = model.data_preprocessor(batches[0], True)
        model(**data, mode='loss')
    finally:
        model.captioner.loss = original
        del model.loss_with_outputs
    assert not hasattr(model, 'last_outputs')  # the outputs are returned, not kept on the module
    (_, out), = returned
    num_dn = out.num_denoising
    assert num_dn > 0
    hidden = out.hidden_states[-1]
    for i, (q_idx, g_idx) in enumerate(out.last_layer_assign):
        assert len(q_idx) == len(batches[0]['data_samples'][i].gt_instances)
        assert torch.equal(seen['queries'][i], hidden[i, num_dn + q_idx])
        assert not torch.equal(seen['queries'][i], hidden[i, q_idx])  # the DN rows are different
        assert torch.equal(seen['boxes'][i], out.all_bbox_preds[-1][i, num_dn + q_idx])
        meta = batches[0]['data_samples'][i].metainfo
        labels = out.gt_labels[i][g_idx].tolist()
        assert seen['phrases'][i] == [meta['phrases'][lab] for lab in labels]
        assert seen['captions'][i] == meta['long_caption']
    # memory levels: [B, C, H, W] at strides 8, 16, 32, 64 of the padded batch
    shapes = [tuple(m.shape[-2:]) for m in seen['levels']]
    assert shapes == [tuple(s) for s in out.spatial_shapes.tolist()]


def test_training_updates_lora_and_detector_but_not_base_llm(setup):
    cfg, model, batches = setup
    base = {n: p.detach().clone() for n, p in model.captioner.llm.named_parameters()
            if 'lora_' not in n}
    trainable = [p for p in model.parameters() if p.requires_grad]
    assert all(not p.requires_grad for n, p in model.captioner.llm.named_parameters()
               if 'lora_' not in n)
    before = {n: p.detach().clone() for n, p in model.named_parameters() if p.requires_grad}
    opt = torch.optim.AdamW(trainable, lr=1e-3)
    caption_losses = []
    for step in range(6):
        data = model.data_preprocessor(batches[step % len(batches)], True)
        losses = model(**data, mode='loss')
        total = sum(v for k, v in losses.items() if 'loss' in k)
        opt.zero_grad()
        total.backward()
        opt.step()
        caption_losses.append((losses['loss_image_caption'] + losses['loss_region_caption']).item())
    for n, p in model.captioner.llm.named_parameters():
        if 'lora_' not in n:
            assert torch.equal(p, base[n]), n
    changed = {n for n, p in model.named_parameters() if p.requires_grad and not torch.equal(p, before[n])}
    assert any('lora_' in n for n in changed)
    assert any(n.startswith('captioner.region_projector') for n in changed)
    assert any(n.startswith('decoder.') for n in changed) and any(n.startswith('encoder.') for n in changed)
    assert caption_losses[-1] < caption_losses[0]


def test_predict_never_runs_the_llm_and_switch_removes_it(setup, synthetic_data):
    _, model, batches = setup
    model.eval()

    def boom(*args, **kwargs):
        raise AssertionError('the LLM ran at inference')

    handles = [m.register_forward_pre_hook(lambda *a, **k: boom()) for m in model.captioner.modules()]
    try:
        with torch.no_grad():
            out = model.test_step(batches[0])
    finally:
        for h in handles:
            h.remove()
    assert len(out) == len(batches[0]['data_samples']) and out[0].pred_instances.bboxes.shape[1] == 4
    model.train()
    cfg = _cfg(synthetic_data, **{'model.use_captioner': False})
    detector_only = MODELS.build(cfg.model)
    assert detector_only.captioner is None
    assert not any(n.startswith('captioner.') for n in detector_only.state_dict())


def test_missing_caption_is_counted_not_fatal(setup):
    _, model, batches = setup
    model.train()
    batch = dict(inputs=batches[1]['inputs'], data_samples=[s.clone() for s in batches[1]['data_samples']])
    batch['data_samples'][0].set_metainfo(dict(long_caption=None))
    before = model.captioner.counters.get('image_caption_missing', 0)
    data = model.data_preprocessor(batch, True)
    losses = model(**data, mode='loss')
    assert torch.isfinite(losses['loss_image_caption'])
    assert losses['num_image_caption_missing'].item() == 1
    assert model.captioner.counters['image_caption_missing'] == before + 1


def test_captioner_does_not_disturb_the_detector_random_stream(synthetic_data):
    """Detector-only vs LLMDet comparisons start from the same detector and the same noise."""
    built = {}
    for use in (True, False):
        torch.manual_seed(0)
        model = MODELS.build(_cfg(synthetic_data, **{'model.use_captioner': use}).model)
        built[use] = (model.state_dict(), torch.rand(4))
    with_cap, alone = built[True], built[False]
    assert torch.equal(with_cap[1], alone[1])
    for key, value in alone[0].items():
        assert torch.equal(with_cap[0][key], value), key


def test_released_cross_attention_trains_inside_llmdet(setup, synthetic_data):
    """The released recipe's LLM cross-attention blocks (region branch) on the tiny LLMDet: a padded batch
    trains, the region loss is unchanged at init (zero-init up_proj) and every block's up_proj gets a gradient."""
    _, plain, batches = setup
    xattn = dict(every=2, embed_dims=64, num_heads=4, num_points=2)
    torch.manual_seed(0)
    model = MODELS.build(_cfg(synthetic_data, **{'model.captioner.region_cross_attn': xattn}).model).train()
    missing, unexpected = model.load_state_dict(plain.state_dict(), strict=False)
    assert unexpected == [] and missing and all('region_cross_attn' in k for k in missing)
    data = model.data_preprocessor(batches[0], True)
    torch.manual_seed(3)
    ours = model(**data, mode='loss')
    torch.manual_seed(3)
    ref = plain.train()(**model.data_preprocessor(batches[0], True), mode='loss')
    torch.testing.assert_close(ours['loss_region_caption'], ref['loss_region_caption'])
    sum(v for k, v in ours.items() if 'loss' in k).backward()
    blocks = model.captioner.region_cross_attn.blocks
    assert len(blocks) == 2 and all(b.up_proj.weight.grad.abs().sum() > 0 for b in blocks)
