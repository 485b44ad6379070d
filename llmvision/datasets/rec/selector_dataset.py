"""Dataset of REC selector samples: RefCOCO refer layout + one or more candidate sources."""
import logging
from typing import List, Optional, Sequence, Union

import torch
from mmengine.dataset import BaseDataset
from mmengine.logging import print_log
from mmengine.structures import InstanceData

from llmvision.models.selectors.serializer import BoxListPromptSerializer
from llmvision.registry import DATASETS
from llmvision.structures import DetDataSample
from llmvision.utils.hf_builder import build_object

from .finetune_builder import build_selector_samples
from .refer_records import load_refer_records


@DATASETS.register_module()
class RECSelectorDataset(BaseDataset):
    """(prompt, answer) samples for :class:`llmvision.models.selectors.RECSelector`.

    Each item is ``dict(inputs=<user prompt str>, data_samples=DetDataSample)`` whose metainfo
    holds ``key``, ``img_id``, ``img_path``, ``ori_shape`` (H, W), ``expression``,
    ``candidates`` (list of CandidateSet, prompt order), ``answer`` (printed index str or
    ``None``), ``label``, ``best_iou``; ``gt_instances.bboxes`` is the GT box ``[1, 4]`` pixel
    xyxy. Training (``test_mode=False``) applies the rules of :mod:`.finetune_builder`;
    :attr:`stats` holds its counts.

    Args:
        data_root / dataset / split_by / split / img_prefix: see :func:`load_refer_records`.
        candidate_sources: configs (or objects) of candidate sources, one prompt block each.
        serializer: prompt serializer config (must match the selector's).
        tokenizer: tokenizer config for the token-limit rule (``None``: rule off).
        iou_thr, inclusive, num_shuffles, max_tokens, clip, min_candidates, seed: see
            :func:`build_selector_samples` (defaults: the released recipe).
        max_records: use only the first N records (quick runs).
    """

    def __init__(self, data_root: str, candidate_sources: Sequence, dataset: str = 'refcoco',
                 split_by: str = 'unc', split: str = 'train', img_prefix: Optional[str] = None,
                 serializer=None, tokenizer=None, iou_thr: float = 0.5, inclusive: bool = False,
                 num_shuffles: Union[int, str] = 'released', max_tokens: Optional[int] = 1024,
                 clip: bool = False, min_candidates: int = 2, seed: int = 0,
                 max_records: Optional[int] = None, test_mode: bool = False, lazy_init: bool = False,
                 **kwargs):
        self.rec_cfg = dict(dataset=dataset, split_by=split_by, split=split, img_prefix=img_prefix)
        self.sources = [build_object(s) for s in candidate_sources]
        if not self.sources:
            raise ValueError('RECSelectorDataset: candidate_sources is empty')
        ser = build_object(serializer) if serializer is not None else BoxListPromptSerializer()
        self.serializer = BoxListPromptSerializer(**ser) if isinstance(ser, dict) else ser
        self.tokenizer = build_object(tokenizer)
        self.rules = dict(iou_thr=iou_thr, inclusive=inclusive, num_shuffles=num_shuffles,
                          max_tokens=max_tokens, clip=clip, min_candidates=min_candidates, seed=seed)
        self.max_records = max_records
        self.stats = None
        super().__init__(data_root=data_root, test_mode=test_mode, lazy_init=lazy_init,
                         serialize_data=False, **kwargs)

    def load_data_list(self) -> List[dict]:
        records = load_refer_records(self.data_root, **self.rec_cfg)
        if self.max_records is not None:
            records = records[:self.max_records]
        samples, self.stats = build_selector_samples(
            records, self.sources, self.serializer, self.tokenizer, train=not self.test_mode,
            **self.rules)
        print_log(f'RECSelectorDataset {self.rec_cfg["dataset"]}/{self.rec_cfg["split"]}: '
                  f'{dict(self.stats)}', logger='current', level=logging.INFO)
        return samples

    def prepare_data(self, idx) -> dict:
        return pack_selector_sample(self.get_data_info(idx))


def pack_selector_sample(s: dict) -> dict:
    """A builder sample -> ``dict(inputs=prompt, data_samples=DetDataSample)``."""
    ds = DetDataSample(metainfo=dict(
        key=s['key'], img_id=s['img_id'], img_path=s.get('img_path'),
        ori_shape=(s['height'], s['width']), expression=s['expression'],
        candidates=s['candidates'], answer=s['answer'], label=s['label'],
        best_iou=s['best_iou']))
    gt = InstanceData()
    gt.bboxes = torch.tensor([s['gt_bbox']], dtype=torch.float32)
    gt.labels = torch.zeros(1, dtype=torch.long)
    ds.gt_instances = gt
    return dict(inputs=s['prompt'], data_samples=ds)
