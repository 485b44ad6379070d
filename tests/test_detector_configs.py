"""The model configs build and run (Swin-T 4 levels, Swin-L 5 levels), and a missing BERT folder
gives an error saying what to put where; the LLMDet configs (T/B/L, only-p5, stage 1) build with tiny
stand-ins for the weights and train the parameters they say (frozen sets, image-token levels,
sequence budget, LLM cross-attention levels)."""
import copy

import pytest
import torch
from mmengine.config import Config

from helpers import WORDS, astronaut, sample
from llmvision.models.language import BertTextEncoder, write_bert_vocab
from llmvision.registry import MODELS


def tiny_text(vocab):
    return dict(type=BertTextEncoder, tokenizer=vocab,
                bert_config=dict(vocab_size=1100, hidden_size=32, num_hidden_layers=1,
                                 num_attention_heads=2, intermediate_size=64))


@pytest.mark.parametrize('name,levels', [('swin_t', 4), pytest.param('swin_l', 5, marks=pytest.mark.slow),
                                         ('tiny', 4)])
def test_config_builds_and_runs(name, levels, tmp_path):
    torch.manual_seed(0)
    vocab = write_bert_vocab(str(tmp_path / 'vocab'), WORDS)
    cfg = Config.fromfile(f'configs/grounding_dino/grounding_dino_{name}.py')
    model_cfg = cfg.model.to_dict() if hasattr(cfg.model, 'to_dict') else dict(cfg.model)
    model_cfg['text_encoder'] = tiny_text(vocab)
    model_cfg['num_queries'] = 20
    model = MODELS.build(model_cfg).eval()
    assert model.num_feature_levels == levels
    with torch.no_grad():
        out = model(astronaut((64, 64)), [sample(['woman', 'rocket'], (64, 64), (64, 64))], mode='tensor')
    assert out.all_cls_scores.shape[1:] == (1, 20, 256)
    assert out.all_bbox_preds.shape[0] == len(model.decoder.layers)
    assert torch.isfinite(out.all_bbox_preds).all()


def test_missing_bert_says_what_to_put_where(tmp_path):
    with pytest.raises(FileNotFoundError, match='Put a HuggingFace BERT folder there'):
        BertTextEncoder(name_or_path=str(tmp_path / 'bert-base-uncased'))


# ------------------------------------------------------------------ LLMDet configs, built tiny
LLMDET_CONFIGS = {  # config -> (feature levels, image-token levels, visual tokens, sequence budget)
    'llmdet_swin_t': (4, (2, 1), 400 + 1 + 729, 1600),
    'llmdet_swin_b': (4, (2, 1), 400 + 1 + 729, 1600),
    'llmdet_swin_l': (5, (3,), 400, 1200),
    'llmdet_swin_t_only_p5': (4, (2,), 400, 1200),
    'llmdet_swin_t_stage1': (4, (2,), 400, 1200),
}


def released_projector_file(path, hidden, seed=3):
    """A ``mm_projector2.bin`` in the released layout (``vision_projector_with_pos_proj`` under
    ``mm_projector``) for a ``hidden``-wide LLM; returns (path, our projector state it encodes)."""
    from llmvision.models.captioners.projector import VisualProjector
    torch.manual_seed(seed)
    ours = VisualProjector(256, hidden).state_dict()
    released = {f'model.mm_projector.vision_projector.0.{k[len("proj."):]}': v for k, v in ours.items()
                if k.startswith('proj.')}
    released.update({f'model.mm_projector.{k}': v for k, v in ours.items() if k.startswith('pos_proj.')})
    torch.save(released, path)
    return str(path), ours


def tiny_llmdet_cfg(name, data, projector_file=None):
    """The config's model with small stand-ins where real weights are needed (Swin with the same output
    stages, BERT, Qwen2 with 8 layers, 20 queries, a projector file of that width); every LLMDet /
    captioner option is the config's."""
    from llmvision.engine import load_config
    from llmvision.models.backbones import SwinBackbone
    from llmvision.models.llm.tiny import tiny_qwen2_llm_cfg
    from llmvision.models.llm.tokenizer import load_tokenizer
    cfg = load_config(f'configs/llmdet/{name}.py')
    outer = copy.deepcopy(cfg.model)
    model = outer['model'] if 'trainable' in outer else outer
    stages = tuple(model['backbone']['out_indices'])
    model['backbone'] = dict(type=SwinBackbone, embed_dims=24, depths=(1, 1, 1, 1), num_heads=(1, 2, 3, 4),
                             window_size=7, drop_path_rate=0.0, out_indices=stages)
    model['neck']['in_channels'] = tuple(24 * 2 ** i for i in stages)
    model['text_encoder'] = dict(type=BertTextEncoder, tokenizer=str(data.bert_tokenizer),
                                 bert_config=dict(vocab_size=1100, hidden_size=32, num_hidden_layers=1,
                                                  num_attention_heads=2, intermediate_size=64))
    model['num_queries'] = 20
    cap = model['captioner']
    tok = load_tokenizer(str(data.llm_tokenizer))
    assert cap['llm']['type'].__name__ == 'qwen2_from_llava_onevision'  # the released LLM's folder
    cap['llm'] = tiny_qwen2_llm_cfg(len(tok), num_hidden_layers=8)
    cap['tokenizer'] = tok
    if cap.get('projector_checkpoint') is not None:
        assert cap['projector_checkpoint'].endswith('/mm_projector2.bin')
        cap['projector_checkpoint'] = projector_file
    return cfg, outer


@pytest.fixture(scope='module')
def grounding_batch(synthetic_data):
    """One synthetic training batch (2 images with boxes, phrases and long captions), short side 96."""
    from mmengine.runner import Runner

    from llmvision.engine import load_config
    cfg = load_config('configs/llmdet/llmdet_tiny_synthetic.py',
                      {'train_dataloader.dataset.data_root': f'{synthetic_data.root}/',
                       'train_dataloader.batch_size': 2, 'train_dataloader.num_workers': 0,
                       'train_dataloader.persistent_workers': False,
                       'train_dataloader.dataset.pipeline.3.scales': [96]})
    for batch in Runner.build_dataloader(cfg.train_dataloader, seed=0):
        if all(len(s.gt_instances) for s in batch['data_samples']):
            return batch
    raise AssertionError('no synthetic batch with boxes in every image')


@pytest.mark.parametrize('name', list(LLMDET_CONFIGS))
def test_llmdet_config_builds_and_trains_what_it_says(name, synthetic_data, grounding_batch, tmp_path):
    levels, token_levels, num_visual, budget = LLMDET_CONFIGS[name]
    projector_file, projector = released_projector_file(tmp_path / 'mm_projector2.bin', hidden=64)
    cfg, model_cfg = tiny_llmdet_cfg(name, synthetic_data, projector_file)
    torch.manual_seed(0)
    model = MODELS.build(model_cfg).train()
    cap = model.captioner
    stage1 = name.endswith('stage1')
    # the pre-aligned projector goes into both projectors (stage 1 trains a fresh one)
    for module in (cap.image_tokenizer.projector, cap.region_projector):
        loaded = all(torch.equal(v, projector[k]) for k, v in module.state_dict().items())
        assert loaded != stage1
    assert model.num_feature_levels == levels
    assert cap.image_tokenizer.levels == token_levels and cap.image_tokenizer.num_tokens == num_visual
    assert cap.image_prompt.max_sequence_len == budget and cap.image_prompt.max_answer_len is None
    if stage1:  # aligner: only the image projector trains; detector, BERT, LLM frozen; no LoRA, no x-attn
        assert cap.region_cross_attn is None and cap.region_loss_weight == 0
        assert not any('lora_' in n for n, _ in model.named_parameters())
    else:  # 6 blocks on a 24-layer LLM; here 8 layers -> layers 0 and 4, attending to every level
        assert cap.region_cross_attn.layer_ids == [0, 4]
        assert all(b.attn.num_levels == levels for b in cap.region_cross_attn.blocks)
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert not any(n.startswith(('backbone.', 'neck.')) for n in trainable)
    assert not any(n.startswith('captioner.llm.') and 'lora_' not in n for n in trainable)
    if stage1:
        assert trainable and all(n.startswith('captioner.image_tokenizer.') for n in trainable)
    else:
        assert any(n.startswith('encoder.') for n in trainable)
        assert any(n.startswith('text_encoder.') for n in trainable)
        assert any('lora_' in n for n in trainable) and any('region_cross_attn' in n for n in trainable)
        lora_r = {p.shape[0] for n, p in model.named_parameters() if 'lora_A' in n}
        assert lora_r == {64 if name == 'llmdet_swin_l' else 128}
    # a training forward on the synthetic batch: the image caption runs on these levels (and the
    # region captions through the cross-attention blocks); the backward (slow on CPU for the full
    # 256-d encoder) runs for stage 1, where it shows that only the projector learns
    losses = model(**model.data_preprocessor(grounding_batch, True), mode='loss')
    assert torch.isfinite(losses['loss_image_caption']) and losses['loss_image_caption'] > 0
    if not stage1:
        assert torch.isfinite(losses['loss_region_caption']) and losses['loss_region_caption'] > 0
        return
    sum(v for k, v in losses.items() if 'loss' in k).backward()
    with_grad = {n for n, p in model.named_parameters() if p.grad is not None and p.grad.abs().sum() > 0}
    assert any(n.startswith('captioner.image_tokenizer.projector') for n in with_grad)
    assert with_grad <= trainable


def test_build_partly_frozen_names_a_wrong_prefix():
    from llmvision.utils.freeze import build_partly_frozen
    net = torch.nn.Sequential(torch.nn.Linear(2, 2), torch.nn.Sequential(torch.nn.Linear(2, 2)))
    out = build_partly_frozen(net, trainable=('1',))
    assert [n for n, p in out.named_parameters() if p.requires_grad] == ['1.0.weight', '1.0.bias']
    with pytest.raises(ValueError, match=r"starts with \['1.weight'\]"):
        build_partly_frozen(net, trainable=('1.weight',))
    with pytest.raises(ValueError, match='at least one'):
        build_partly_frozen(net, trainable=())
