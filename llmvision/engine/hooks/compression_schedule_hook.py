"""LLaVolta's staged training: switch the visual-token compressor's (K, S) by training progress.

Before every training iteration the stage is chosen from ``runner.iter / runner.max_iters`` (a function
of the iteration counter, not of a forward counter, so gradient accumulation, validation and resumes
cannot shift it) and set on every :class:`VisualTokenCompressor` of the model (LLaVA's, the LLMDet
captioner's). Changes are logged; the current stage is also a logged scalar (``llavolta_stage``,
``llavolta_cr`` = LLaVolta's compression ratio for the LLM depth). The stage is saved in
``checkpoint['llavolta_stage']`` and put back on ``--resume`` before the first resumed iteration.
"""
from typing import List, Optional

from mmengine.hooks import Hook
from mmengine.model import is_model_wrapper

from llmvision.models.lmm.compression_presets import compression_stages, describe, stage_at
from llmvision.models.lmm.compressor import VisualTokenCompressor, compression_ratio
from llmvision.registry import HOOKS


@HOOKS.register_module()
class CompressionScheduleHook(Hook):
    """Set the compressor's stage from training progress.

    Args:
        preset: a name from :mod:`llmvision.models.lmm.compression_presets` (``'four_deeper_wider'``, ...).
        stages: explicit stages ``[dict(begin=fraction, layer=K or None, stride=S), ...]`` instead of a preset.
        shallow_layer, deep_layer, strong_stride, weak_stride: the preset's K and S values.
        num_layers: LLM depth for the logged compression ratio (None: read from the compressor's
            last known LLM, else not logged).
    """

    priority = 'NORMAL'

    def __init__(self, preset: Optional[str] = None, stages: Optional[List[dict]] = None,
                 shallow_layer: int = 2, deep_layer: int = 16, strong_stride: int = 8, weak_stride: int = 2,
                 num_layers: Optional[int] = None):
        if (preset is None) == (stages is None):
            raise ValueError('CompressionScheduleHook: give exactly one of preset= or stages=')
        if stages is None:
            stages = compression_stages(preset, shallow_layer, deep_layer, strong_stride, weak_stride)
        stages = [dict(begin=float(s.get('begin', 0.0)), layer=s.get('layer'), stride=int(s.get('stride', 1)))
                  for s in stages]
        begins = [s['begin'] for s in stages]
        if begins[0] != 0.0 or begins != sorted(begins) or begins[-1] >= 1.0:
            raise ValueError(f'stage begins must start at 0, increase and stay below 1, got {begins}')
        self.preset = preset
        self.stages = stages
        self.num_layers = num_layers
        self.current: Optional[int] = None

    @staticmethod
    def compressors(runner) -> List[VisualTokenCompressor]:
        model = runner.model.module if is_model_wrapper(runner.model) else runner.model
        found = [m for m in model.modules() if isinstance(m, VisualTokenCompressor)]
        if not found:
            raise RuntimeError('CompressionScheduleHook: the model has no VisualTokenCompressor '
                               '(set the model\'s compressor=dict(type=VisualTokenCompressor) in the config)')
        return found

    def _apply(self, runner, index: int, why: str) -> None:
        stage = self.stages[index]
        for comp in self.compressors(runner):
            comp.set_stage(stage['layer'], stage['stride'])
        if index != self.current:
            runner.logger.info(f'LLaVolta stage {index + 1}/{len(self.stages)} ({describe(stage)}): {why}')
        self.current = index

    def stage_for(self, runner) -> int:
        max_iters = max(int(runner.max_iters), 1)
        return stage_at(self.stages, runner.iter / max_iters)

    def before_train(self, runner) -> None:
        self._apply(runner, self.stage_for(runner), f'iteration {runner.iter + 1} of {runner.max_iters}')

    def before_train_iter(self, runner, batch_idx: int, data_batch=None) -> None:
        self._apply(runner, self.stage_for(runner), f'iteration {runner.iter + 1} of {runner.max_iters}')
        stage = self.stages[self.current]
        runner.message_hub.update_scalar('train/llavolta_stage', self.current + 1)
        if self.num_layers:
            runner.message_hub.update_scalar('train/llavolta_cr', compression_ratio(
                self.num_layers, stage['layer'], stage['stride']))

    def before_save_checkpoint(self, runner, checkpoint: dict) -> None:
        index = self.current if self.current is not None else self.stage_for(runner)
        checkpoint['llavolta_stage'] = dict(index=index, stages=self.stages)

    def after_load_checkpoint(self, runner, checkpoint: dict) -> None:
        saved = checkpoint.get('llavolta_stage')
        if not saved or not getattr(runner, '_resume', False):
            return
        if saved['stages'] != self.stages:
            runner.logger.warning(f'LLaVolta: the checkpoint was trained with stages {saved["stages"]}, this run '
                                  f'uses {self.stages}; the stage follows this run\'s schedule')
        index = min(int(saved['index']), len(self.stages) - 1)
        done = checkpoint.get('meta', {}).get('iter', '?')
        self._apply(runner, index, f'restored from the checkpoint saved after {done} iterations')
