"""DeepSpeed through ``tools/train.py --deepspeed``: the json/config reconciliation, and real
ZeRO-2 / ZeRO-3 runs of the tiny synthetic Grounding-DINO on CPU (DeepSpeed's CPU accelerator,
gloo, one torchrun rank).
"""
import json
import re

import pytest
from mmengine.config import Config

from llmvision.engine import deepspeed_cfg
from llmvision.engine.deepspeed_cfg import deepspeed_strategy
from tiny_dist_run import CONFIG, tiny_dist_train


def _cfg(batch=2, accum=1, clip=0.1, norm_type=2):
    wrapper = dict(optimizer=dict(type='AdamW', lr=1e-4), accumulative_counts=accum)
    if clip is not None:
        wrapper['clip_grad'] = dict(max_norm=clip, norm_type=norm_type)
    return Config(dict(train_dataloader=dict(batch_size=batch), optim_wrapper=wrapper))


@pytest.fixture
def warnings_log(monkeypatch):
    logged = []
    monkeypatch.setattr(deepspeed_cfg, 'print_log',
                        lambda msg, logger=None, level=20: logged.append((level, msg)))
    return logged


def test_presets_take_config_values(warnings_log):
    for name, stage in (('zero2', 2), ('zero3', 3)):
        strategy, wrapper = deepspeed_strategy(_cfg(batch=3, accum=2, clip=0.5), name)
        ds = strategy['config']
        assert strategy['type'] == 'DeepSpeedStrategy' and wrapper['type'] == 'DeepSpeedOptimWrapper'
        assert ds['zero_optimization']['stage'] == stage
        assert ds['train_micro_batch_size_per_gpu'] == 3
        assert ds['gradient_accumulation_steps'] == 2
        assert ds['gradient_clipping'] == 0.5
        assert wrapper['optimizer']['type'] == 'AdamW'
    assert warnings_log == []  # presets hold no values to disagree with
    Config(dict(strategy=strategy)).pretty_text  # the runner dumps it as text


def test_json_disagreements_config_wins_with_warning(tmp_path, warnings_log):
    path = tmp_path / 'ds.json'
    path.write_text(json.dumps(dict(
        train_batch_size=64, train_micro_batch_size_per_gpu=8, gradient_accumulation_steps=4,
        gradient_clipping=1.0, fp16=dict(enabled=True),
        zero_optimization=dict(stage=2, offload_optimizer=dict(device='cpu')))))
    strategy, _ = deepspeed_strategy(_cfg(batch=2, accum=1, clip=0.1), str(path), amp='bf16')
    ds = strategy['config']
    assert ds['train_micro_batch_size_per_gpu'] == 2
    assert ds['gradient_accumulation_steps'] == 1
    assert ds['gradient_clipping'] == 0.1
    assert 'train_batch_size' not in ds
    assert ds['torch_autocast'] == dict(enabled=True, dtype='bfloat16')
    assert 'fp16' not in ds and 'bf16' not in ds and 'inputs_to_half' not in strategy
    assert ds['zero_optimization']['offload_optimizer'] == dict(device='cpu')  # json-only keys kept
    text = '\n'.join(msg for level, msg in warnings_log if level == 30)
    for key in ('train_micro_batch_size_per_gpu=8', 'gradient_accumulation_steps=4',
                'gradient_clipping=1.0', 'train_batch_size'):
        assert key in text, text
    assert len(warnings_log) == 4


def test_json_clipping_without_config_clipping_is_disabled(tmp_path, warnings_log):
    path = tmp_path / 'ds.json'
    path.write_text(json.dumps(dict(gradient_clipping=1.0, train_micro_batch_size_per_gpu='auto')))
    ds = deepspeed_strategy(_cfg(clip=None), str(path))[0]['config']
    assert ds['gradient_clipping'] == 0.0 and ds['train_micro_batch_size_per_gpu'] == 2
    assert len(warnings_log) == 1 and 'gradient_clipping=1.0' in warnings_log[0][1]
    deepspeed_strategy(_cfg(norm_type=1), 'zero2')
    assert 'norm_type=1' in warnings_log[-1][1]


def test_bad_json_names_file_and_line(tmp_path):
    path = tmp_path / 'bad.json'
    path.write_text('{\n  "train_micro_batch_size_per_gpu": 2,\n  "zero_optimization": {stage: 2}\n}\n')
    with pytest.raises(ValueError, match=re.escape(f'{path}:3:')):
        deepspeed_strategy(_cfg(), str(path))
    path.write_text('[1, 2]')
    with pytest.raises(ValueError, match=re.escape(f'{path}:1:') + '.*object'):
        deepspeed_strategy(_cfg(), str(path))
    with pytest.raises(FileNotFoundError, match='missing.json'):
        deepspeed_strategy(_cfg(), str(tmp_path / 'missing.json'))


def test_unknown_preset():
    with pytest.raises(ValueError, match=r"unknown preset 'zero4'.*zero2.*zero3"):
        deepspeed_strategy(_cfg(), 'zero4')


def test_mmengine_strategy_builds_with_this_deepspeed():
    """mmengine 0.10.7 imports ``deepspeed.runtime.fp16.onebit``, gone from DeepSpeed 0.19."""
    from mmengine._strategy import DeepSpeedStrategy
    from mmengine.registry import OPTIMIZERS
    deepspeed_cfg.patch_mmengine_deepspeed()
    assert {'DeepSpeedCPUAdam', 'FusedAdam'} <= set(deepspeed_cfg.register_deepspeed_optimizers())
    from deepspeed.ops.adam import DeepSpeedCPUAdam
    assert OPTIMIZERS.get('DeepSpeedCPUAdam') is DeepSpeedCPUAdam
    strategy = DeepSpeedStrategy(config=dict(zero_optimization=dict(stage=2)))
    assert strategy.config['zero_optimization']['stage'] == 2


# ------------------------------------------------------------------ end to end (torchrun, 1 rank)
_LOSSES = {}


def _train(data, tmp_path_factory, spec, port):
    if spec in _LOSSES:
        return _LOSSES[spec]
    work_dir = tmp_path_factory.mktemp(f'ds_{spec}')
    losses = tiny_dist_train(data, work_dir, 1, ['--deepspeed', spec], port,
                             env=dict(DS_ACCELERATOR='cpu'))
    dumped = (work_dir / CONFIG.name).read_text()
    assert "type='DeepSpeedStrategy'" in dumped and "type='DeepSpeedOptimWrapper'" in dumped
    assert (work_dir / 'iter_3.pth').is_dir()  # a DeepSpeed (sharded) checkpoint folder
    _LOSSES[spec] = losses
    return losses


def test_zero2_trains_on_cpu(synthetic_data, tmp_path_factory):
    losses = _train(synthetic_data, tmp_path_factory, 'zero2', 29731)
    assert sorted(losses) == [1, 2, 3]
    assert all(0 < v < 1e3 for v in losses.values()), losses  # finite and sane


def test_zero3_matches_zero2(synthetic_data, tmp_path_factory):
    """One rank: ZeRO-3 partitions nothing away, so it must follow ZeRO-2 step for step."""
    z2 = _train(synthetic_data, tmp_path_factory, 'zero2', 29732)
    z3 = _train(synthetic_data, tmp_path_factory, 'zero3', 29733)
    assert sorted(z3) == [1, 2, 3]
    for step in z2:
        assert z3[step] == pytest.approx(z2[step], rel=1e-4), (z2, z3)
