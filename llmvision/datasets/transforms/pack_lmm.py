"""Pack an encoded conversation and its images into the multimodal-LLM sample contract.

Input keys: ``imgs`` uint8 ``[N, 3, S, S]``, ``input_ids`` / ``labels`` (lists of ints), ``sample_id``,
``img_paths``, ``question_type``, ``question`` (last user turn, placeholders removed), ``gt_answer``,
``truncated``. Output: ``dict(inputs=imgs,
data_samples=LMMDataSample)`` with ``input_ids`` / ``labels`` LongTensors ``[T]`` and the metainfo keys of
:mod:`llmvision.structures.lmm_sample`.
"""
import torch
from mmcv.transforms import BaseTransform

from ...registry import TRANSFORMS
from ...structures.lmm_sample import LMMDataSample

META_KEYS = ('sample_id', 'img_paths', 'num_images', 'question_type', 'question', 'gt_answer', 'truncated')


@TRANSFORMS.register_module()
class PackLMMInputs(BaseTransform):
    """``results`` -> ``dict(inputs=Tensor uint8 [N, 3, S, S], data_samples=LMMDataSample)``."""

    def transform(self, results: dict) -> dict:
        imgs = results['imgs']
        meta = {k: results.get(k) for k in META_KEYS}
        meta['num_images'] = int(imgs.shape[0])
        sample = LMMDataSample(metainfo=meta)
        sample.input_ids = torch.as_tensor(results['input_ids'], dtype=torch.long)
        sample.labels = torch.as_tensor(results['labels'], dtype=torch.long)
        return dict(inputs=imgs, data_samples=sample)
