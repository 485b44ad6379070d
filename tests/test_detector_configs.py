"""The model configs build and run (Swin-T 4 levels, Swin-L 5 levels), and a missing BERT folder
gives an error saying what to put where."""
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
