"""CompressionScheduleHook: stages follow training progress, are logged and come back on resume."""
import logging

import pytest
import torch
from mmengine.model import BaseModel
from mmengine.runner import Runner
from torch import nn

from llmvision.engine.hooks import CompressionScheduleHook
from llmvision.models.lmm.compression_presets import compression_stages, stage_at
from llmvision.models.lmm.compressor import VisualTokenCompressor

MAX_ITERS = 8


class ToyLMM(BaseModel):
    """Records the compressor's active (K, S) at every training step."""

    def __init__(self):
        super().__init__()
        self.compressor = VisualTokenCompressor()
        self.fc = nn.Linear(2, 1)
        self.seen = []

    def forward(self, inputs, data_samples=None, mode='loss'):
        self.seen.append(self.compressor.active())
        return dict(loss=self.fc(torch.stack(inputs)).pow(2).mean())


def _runner(work_dir, resume_from=None):
    return Runner(
        model=ToyLMM(), work_dir=str(work_dir),
        train_dataloader=dict(dataset=[dict(inputs=torch.ones(2))] * 64, batch_size=2,
                              sampler=dict(type='DefaultSampler', shuffle=False),
                              collate_fn=dict(type='pseudo_collate')),
        optim_wrapper=dict(optimizer=dict(type='SGD', lr=0.01)),
        train_cfg=dict(by_epoch=False, max_iters=MAX_ITERS),
        custom_hooks=[dict(type=CompressionScheduleHook, preset='four_deeper_wider', shallow_layer=1, deep_layer=3,
                           num_layers=4)],
        default_hooks=dict(checkpoint=dict(type='CheckpointHook', interval=5, by_epoch=False),
                           logger=dict(type='LoggerHook', interval=1)),
        resume=resume_from is not None, load_from=resume_from, log_level='INFO',
        experiment_name='toy_resume' if resume_from else 'toy_full')


def test_presets_and_stage_lookup():
    stages = compression_stages('four_deeper_wider')
    assert [(s['layer'], s['stride']) for s in stages] == [(2, 8), (16, 8), (16, 2), (None, 1)]
    assert [s['begin'] for s in stages] == [0, 0.25, 0.5, 0.75]
    assert [stage_at(stages, p) for p in (0, 0.24, 0.25, 0.6, 0.99)] == [0, 0, 1, 2, 3]
    assert [(s['layer'], s['stride']) for s in compression_stages('four_wider_deeper')] == [
        (2, 8), (2, 2), (16, 2), (None, 1)]
    assert len(compression_stages('three_wider')) == 3 and len(compression_stages('two')) == 2
    with pytest.raises(KeyError, match='unknown LLaVolta preset'):
        compression_stages('five')


def test_stages_by_progress_and_resume_mid_schedule(tmp_path):
    runner = _runner(tmp_path)
    runner.train()
    full = runner.model.seen
    # quarters of 8 iterations: 2 per stage (K=1,S=8) (K=3,S=8) (K=3,S=2) none
    assert full == [(1, 8)] * 2 + [(3, 8)] * 2 + [(3, 2)] * 2 + [None] * 2
    ckpt = torch.load(tmp_path / 'iter_5.pth', map_location='cpu', weights_only=False)
    assert ckpt['llavolta_stage']['index'] == 2  # the 5th iteration ran stage 3

    resumed = _runner(tmp_path, resume_from=str(tmp_path / 'iter_5.pth'))  # mid stage 3
    hook = next(h for h in resumed.hooks if isinstance(h, CompressionScheduleHook))
    records = []
    handler = logging.Handler()
    handler.emit = lambda record: records.append(record.getMessage())
    resumed.logger.addHandler(handler)
    resumed.train()
    resumed.logger.removeHandler(handler)
    assert resumed.model.seen == full[5:]
    assert [r for r in records if r.startswith('LLaVolta')] == [
        'LLaVolta stage 3/4 (K=3,S=2): restored from the checkpoint saved after 5 iterations',
        'LLaVolta stage 4/4 (uncompressed): iteration 7 of 8']
    assert hook.current == 3
    assert resumed.message_hub.get_scalar('train/llavolta_stage').current() == 4


def test_missing_compressor_is_a_clear_error(tmp_path):
    runner = _runner(tmp_path)
    runner.model.compressor = nn.Identity()
    with pytest.raises(RuntimeError, match='no VisualTokenCompressor'):
        runner.train()
