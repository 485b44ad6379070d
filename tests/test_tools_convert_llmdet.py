"""``tools/convert_checkpoint.py --from llmdet --config``: a released LLMDet .pth converted WHOLE.

The released file is written from a seeded tiny LLMDet (``configs/llmdet/llmdet_tiny_synthetic.py`` with the LLM
cross-attention blocks on) under the released key names, by the builders of ``test_checkpoint_llmdet``; the tool
builds the same config (other seed), loads the file and must write exactly the source's weights.
"""
import importlib.util
import os

import pytest
import torch

from test_checkpoint_llmdet import CONFIG, build, released_captioner, released_detector

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def load_tool():
    path = os.path.join(ROOT, 'tools/convert_checkpoint.py')
    spec = importlib.util.spec_from_file_location('convert_checkpoint', path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope='module')
def released(synthetic_data, tmp_path_factory):
    model = build(synthetic_data, seed=0)
    sd = model.state_dict()
    path = tmp_path_factory.mktemp('llmdet') / 'llmdet_release.pth'
    torch.save({'state_dict': {**released_detector(sd), **released_captioner(
        sd, model.captioner.region_cross_attn.layer_ids, 'in_layer')}}, path)
    return sd, path


def options(data):
    return ['--config', CONFIG, '--cfg-options', f'model.text_encoder.tokenizer={data.bert_tokenizer}',
            f'model.captioner.tokenizer={data.llm_tokenizer}', 'model.captioner.region_cross_attn.every=2',
            'model.captioner.region_cross_attn.embed_dims=64', 'model.captioner.region_cross_attn.num_heads=4',
            'model.captioner.region_cross_attn.num_points=2']


def test_llmdet_release_converts_whole(synthetic_data, released, tmp_path, capsys):
    sd, src = released
    dst = tmp_path / 'ours.pth'
    assert load_tool().main([str(src), str(dst), '--from', 'llmdet', *options(synthetic_data)]) == 0
    out = capsys.readouterr().out
    assert 'unconverted source keys (0)' in out and 'missing in checkpoint (0)' in out
    assert "ignored on purpose (1): {'lmm.model.image_newline'" in out
    ckpt = torch.load(dst, map_location='cpu', weights_only=True)
    assert ckpt['meta']['format'] == 'llmdet' and ckpt['meta']['ignored'] == ['lmm.model.image_newline']
    assert ckpt['meta']['config'] == os.path.abspath(CONFIG)
    assert sorted(ckpt['state_dict']) == sorted(sd)
    for k, v in sd.items():     # the released LLM is fp16: our fp32 LLM holds its values
        expected = v.half().float() if k.startswith('captioner.llm.') else v.float()
        assert torch.equal(ckpt['state_dict'][k].float(), expected), k
    assert not os.path.exists(str(dst) + '.tmp')


def test_llmdet_leftovers_exit_1_and_write_nothing(synthetic_data, released, tmp_path, capsys):
    _, src = released
    ckpt = torch.load(src, map_location='cpu', weights_only=True)
    ckpt['state_dict']['lmm.model.mystery.weight'] = torch.zeros(3)
    del ckpt['state_dict']['region_connector.pos_proj.bias']
    bad = tmp_path / 'next_release.pth'
    torch.save(ckpt, bad)
    dst = tmp_path / 'ours.pth'
    tool = load_tool()
    assert tool.main([str(bad), str(dst), '--from', 'llmdet', *options(synthetic_data)]) == 1
    captured = capsys.readouterr()
    assert 'unconverted: lmm.model.mystery.weight' in captured.err and '1 missing' in captured.err
    assert 'captioner.region_projector.pos_proj.bias' in captured.out and not dst.exists()
    assert tool.main([str(bad), str(dst), '--from', 'llmdet', '--allow-unconverted', *options(synthetic_data)]) == 0
    assert dst.exists()


@pytest.mark.parametrize('argv', [['--from', 'llmdet'], ['--from', 'mmdet', '--config', CONFIG],
                                  ['--from', 'llmdet', '--config', CONFIG, '--side', 'side.pth']])
def test_llmdet_arguments(argv, tmp_path):
    with pytest.raises(SystemExit) as err:
        load_tool().main([str(tmp_path / 'a.pth'), str(tmp_path / 'b.pth'), *argv])
    assert err.value.code == 2
