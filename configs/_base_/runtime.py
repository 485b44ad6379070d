"""Runtime settings shared by every config: scope, hooks, logging, environment."""
from mmengine.hooks import CheckpointHook, DistSamplerSeedHook, IterTimerHook, LoggerHook, ParamSchedulerHook
from mmengine.runner import LogProcessor
from mmengine.visualization import LocalVisBackend, Visualizer

from llmvision.engine.hooks import BadSampleSummaryHook, NonFiniteGuardHook

default_scope = 'llmvision'

default_hooks = dict(
    timer=dict(type=IterTimerHook),
    logger=dict(type=LoggerHook, interval=50),
    param_scheduler=dict(type=ParamSchedulerHook),
    checkpoint=dict(type=CheckpointHook, interval=5000, by_epoch=False, max_keep_ckpts=3),
    sampler_seed=dict(type=DistSamplerSeedHook),
    non_finite=dict(type=NonFiniteGuardHook), bad_samples=dict(type=BadSampleSummaryHook),  # NaN stop; skip summary
)

env_cfg = dict(
    cudnn_benchmark=False,
    mp_cfg=dict(mp_start_method='fork', opencv_num_threads=0),
    dist_cfg=dict(backend='nccl'),
)

vis_backends = [dict(type=LocalVisBackend)]
visualizer = dict(type=Visualizer, vis_backends=vis_backends, name='visualizer')
log_processor = dict(type=LogProcessor, window_size=50, by_epoch=False)
log_level = 'INFO'

load_from = None
resume = False
randomness = dict(seed=42)
