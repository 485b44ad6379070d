"""Model components. Importing this package registers every model class in ``MODELS``.

Each subpackage's ``__init__`` imports its own modules; keep each one importable at all times.
"""
from . import (
    backbones,
    captioners,
    data_preprocessors,
    detectors,
    language,
    layers,
    lmm,
    losses,
    ops,
    selectors,
)
