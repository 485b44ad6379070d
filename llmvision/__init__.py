"""llmvision: LLM-for-vision methods (Grounding-DINO/LLMDet, VLoRA, LLaVolta, LLM-wrapper) on MMEngine.

Importing the package is cheap and side-effect free apart from the mmengine compatibility
patches in :mod:`llmvision.utils.compat` (see that module for what each one fixes).
"""
from .utils import compat as _compat  # noqa: F401  (installs the mmengine/torch patches)

__version__ = '0.1.0'
