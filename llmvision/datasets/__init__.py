"""Datasets (registered in ``DATASETS``), batch samplers (``DATA_SAMPLERS``) and transforms.

Importing this package registers ODVG (and its square-image tag form: PatchTagDataset), LVIS, RefCOCO (refer
layout and MDETR json), LLaVA json, the aspect-ratio batch sampler and every transform. The synthetic generator lives in
``llmvision.datasets.synthetic`` (imported on demand).
"""
from . import transforms  # noqa: F401
from .bad_samples import BadSampleError, BadSamplePolicy
from .base import GroundingBaseDataset
from .llava_json import LLaVAJsonDataset
from .lvis import LVISDataset
from .odvg import ODVGDataset
from .patch_tags import PatchTagDataset
from .ref_vlm_json import RefVLMJsonDataset
from .refcoco import MDETRRefDataset, RefCOCODataset
from .samplers import AspectRatioBatchSampler
from .shikra_rec import ShikraRECDataset

__all__ = ['BadSampleError', 'BadSamplePolicy', 'GroundingBaseDataset', 'LLaVAJsonDataset', 'LVISDataset',
           'ODVGDataset', 'PatchTagDataset', 'MDETRRefDataset', 'RefCOCODataset', 'AspectRatioBatchSampler']
