"""mmdet/LLMDet -> ours converter and tools/convert_checkpoint.py.

An mmdet-format state dict is written from our tiny model with mmdet's module names (packed
``nn.MultiheadAttention`` q/k/v, ``ffn.layers``, ``norms.i``, ``bbox_head`` branches as
``Sequential`` 0/2/4, BERT under ``language_model.language_backbone.body.model``) plus LLMDet's
LLM keys; converting it back must reproduce every tensor and set the LLM keys aside.
"""
import re
import subprocess
import sys

import pytest
import torch

from helpers import WORDS, our_tiny_model
from llmvision.checkpoint import convert_mmdet_grounding_dino, detect_format, load_grounding_dino_checkpoint
from llmvision.models.language import write_bert_vocab

NORMS = {'norm1': 0, 'norm2': 1, 'norm3': 2, 'norm4': 3}


def to_mmdet(sd):
    out = {}
    for k, v in sd.items():
        if k.startswith(('backbone.', 'neck.')):
            continue  # converted by the backbones helper's functions (tested there)
        if k.startswith('text_encoder.bert.'):
            out['language_model.language_backbone.body.model.' + k[len('text_encoder.bert.'):]] = v
            continue
        if (m := re.match(r'cls_branches\.(\d+)\.bias$', k)):
            out[f'bbox_head.cls_branches.{m.group(1)}.bias'] = v
            continue
        if (m := re.match(r'reg_branches\.(\d+)\.layers\.(\d)\.(\w+)$', k)):
            out[f'bbox_head.reg_branches.{m.group(1)}.{int(m.group(2)) * 2}.{m.group(3)}'] = v
            continue
        m = re.match(r'((?:encoder\.text_layers|decoder\.layers)\.\d+\.(?:self_attn|cross_attn_text))'
                     r'\.(q|k|v|out)_proj\.(weight|bias)$', k)
        if m:
            if m.group(2) == 'out':
                out[f'{m.group(1)}.attn.out_proj.{m.group(3)}'] = v
            elif m.group(2) == 'q':
                parts = [sd[k.replace('.q_proj.', f'.{x}_proj.')] for x in 'qkv']
                out[f'{m.group(1)}.attn.in_proj_{m.group(3)}'] = torch.cat(parts, 0)
            continue
        k = re.sub(r'\.ffn\.fc1\.', '.ffn.layers.0.0.', k)
        k = re.sub(r'\.ffn\.fc2\.', '.ffn.layers.1.', k)
        k = re.sub(r'\.(norm[1-4])\.', lambda mm: f'.norms.{NORMS[mm.group(1)]}.', k) \
            if re.match(r'(encoder\.(text_)?layers|decoder\.layers)\.', k) else k
        out[k] = v
    out['lmm.model.layers.0.weight'] = torch.zeros(2)
    out['connector.0.weight'] = torch.zeros(2)
    return out


@pytest.fixture(scope='module')
def model(tmp_path_factory):
    torch.manual_seed(0)
    vocab = write_bert_vocab(str(tmp_path_factory.mktemp('vocab')), WORDS)
    return our_tiny_model(vocab, num_queries=10, dn_cfg=dict(group_cfg=dict(num_dn_queries=10)))


def test_mmdet_round_trip(model):
    sd = model.state_dict()
    mm = to_mmdet(sd)
    assert detect_format(mm) == 'mmdet'
    back, report = convert_mmdet_grounding_dino(mm)
    assert report.unconverted == []
    assert sorted(report.side) == ['connector.0.weight', 'lmm.model.layers.0.weight']
    expected = {k: v for k, v in sd.items() if not k.startswith(('backbone.', 'neck.'))}
    assert sorted(back) == sorted(expected)
    for k, v in expected.items():
        assert torch.equal(back[k], v), k


def test_convert_tool_and_load(model, tmp_path):
    src = tmp_path / 'llmdet.pth'
    mm = to_mmdet(model.state_dict())
    torch.save({'state_dict': mm, 'meta': {}}, src)
    dst, side = tmp_path / 'ours.pth', tmp_path / 'side.pth'
    run = subprocess.run([sys.executable, 'tools/convert_checkpoint.py', str(src), str(dst),
                          '--from', 'mmdet', '--side', str(side)], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert set(torch.load(side)['state_dict']) == {'lmm.model.layers.0.weight', 'connector.0.weight'}
    fresh_report = load_grounding_dino_checkpoint(model, str(dst))
    assert all(k.startswith(('backbone.', 'neck.')) for k in fresh_report.missing)
    assert fresh_report.unexpected == [] and fresh_report.shape_mismatch == []
    # a wrong key makes the tool fail and name it
    mm['encoder.layers.0.mystery.weight'] = torch.zeros(1)
    torch.save(mm, src)
    run = subprocess.run([sys.executable, 'tools/convert_checkpoint.py', str(src), str(dst)],
                         capture_output=True, text=True)
    assert run.returncode == 1 and 'encoder.layers.0.mystery.weight' in run.stderr
