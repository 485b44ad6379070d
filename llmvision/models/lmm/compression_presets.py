"""LLaVolta's training schemes as stage lists for :class:`CompressionScheduleHook`.

A stage is ``dict(begin=fraction of max_iters, layer=K or None, stride=S)``; it lasts until the next
stage's ``begin``. ``layer=None`` is uncompressed. ``shallow``/``deep`` are LLaVolta's K = 2 and K = 16
of the 32-layer LLaVA-1.5-7B (scale them for other depths); ``strong``/``weak`` its S = 8 and S = 2.
"Deeper" moves K up at the same S, "wider" lowers S at the same K.

  single             (K2,S8) all of training, tested uncompressed
  two                (K2,S8) -> none                                         halves
  three_deeper       (K2,S8) -> (K16,S8) -> none                             thirds
  three_wider        (K2,S8) -> (K2,S2) -> none                              thirds
  four_wider_deeper  (K2,S8) -> (K2,S2) -> (K16,S2) -> none                  quarters
  four_deeper_wider  (K2,S8) -> (K16,S8) -> (K16,S2) -> none                 quarters (the paper's best)
  heavy              (K2,S8) in training and at inference
  light              (K16,S8) in training and at inference
  none               uncompressed
"""
from typing import List, Optional


def _even(settings) -> List[dict]:
    n = len(settings)
    return [dict(begin=i / n, layer=k, stride=s) for i, (k, s) in enumerate(settings)]


def compression_stages(preset: str, shallow: int = 2, deep: int = 16, strong: int = 8,
                       weak: int = 2) -> List[dict]:
    """Stage list of ``preset`` (see the module docstring)."""
    none = (None, 1)
    table = {
        'none': [none],
        'single': [(shallow, strong)],
        'heavy': [(shallow, strong)],
        'light': [(deep, strong)],
        'two': [(shallow, strong), none],
        'three_deeper': [(shallow, strong), (deep, strong), none],
        'three_wider': [(shallow, strong), (shallow, weak), none],
        'four_wider_deeper': [(shallow, strong), (shallow, weak), (deep, weak), none],
        'four_deeper_wider': [(shallow, strong), (deep, strong), (deep, weak), none],
    }
    if preset not in table:
        raise KeyError(f'unknown LLaVolta preset {preset!r}; choose one of {sorted(table)}')
    return _even(table[preset])


def keeps_compression_at_inference(preset: str) -> bool:
    """Heavy and light test with their compression; the staged schemes test uncompressed."""
    return preset in ('heavy', 'light')


def stage_at(stages: List[dict], progress: float) -> int:
    """Index of the stage active at ``progress`` (fraction of training done, 0..1)."""
    index = 0
    for i, stage in enumerate(stages):
        if stage['begin'] <= progress + 1e-12:
            index = i
    return index


def describe(stage: Optional[dict]) -> str:
    """``'K=2,S=8'`` or ``'uncompressed'``."""
    if stage is None or stage.get('layer') is None or stage.get('stride', 1) == 1:
        return 'uncompressed'
    return f"K={stage['layer']},S={stage['stride']}"
