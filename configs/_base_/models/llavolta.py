"""LLaVolta (REFERENCE.md section 4) on a LLaVA model, shared by the configs/llavolta/ recipes.

A leaf reads this next to a LLaVA model base and picks one scheme:

- staged (the paper's best, "four stages, deeper then wider"): ``model.update(compressor=llavolta_staged)`` and
  ``custom_hooks = [llavolta_schedule]``: (K=2,S=8) -> (K=16,S=8) -> (K=16,S=2) -> uncompressed, a quarter of
  training each, tested uncompressed. Other schemes: ``--cfg-options custom_hooks.0.preset=NAME`` with NAME in
  single, two, three_deeper, three_wider, four_wider_deeper, four_deeper_wider
  (``llmvision/models/lmm/compression_presets.py``).
- heavy (K=2,S=8) / light (K=16,S=8): ``model.update(compressor=llavolta_heavy)`` (or ``llavolta_light``), no
  hook; compression is kept at inference (batched generation with the pooled KV cache).

K values are those of a 32-layer LLM (LLaVA-1.5-7B); a shallower LLM scales them (tiny leaf: 4 layers).
"""
from llmvision.engine.hooks import CompressionScheduleHook
from llmvision.models.lmm.compressor import VisualTokenCompressor

llavolta_layers = 32
llavolta_staged = dict(type=VisualTokenCompressor)  # (K, S) set by the schedule hook; eval uncompressed
llavolta_schedule = dict(type=CompressionScheduleHook, preset='four_deeper_wider', shallow_layer=2, deep_layer=16,
                         strong_stride=8, weak_stride=2, num_layers=llavolta_layers)
llavolta_heavy = dict(type=VisualTokenCompressor, layer=2, stride=8, keep_at_inference=True)
llavolta_light = dict(type=VisualTokenCompressor, layer=16, stride=8, keep_at_inference=True)
