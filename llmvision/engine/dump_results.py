"""``--out results.json``: dump predictions in COCO/LVIS result format.

Each entry: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` (pixels of the original
image). ``category_id`` maps the model's label through ``dataset_meta['cat_ids']`` when the
dataset provides it (COCO/LVIS ids); otherwise the label index is written, with a warning.
"""
import json
import math

import torch
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from llmvision.registry import METRICS
from llmvision.structures.boxes import xyxy_to_xywh
from llmvision.utils.compat import atomic_write_bytes


def _get(sample, key):
    return sample.get(key) if isinstance(sample, dict) else getattr(sample, key, None)


@METRICS.register_module()
class DumpDetResults(BaseMetric):
    """Collect ``pred_instances`` of every sample and write one json list on rank 0."""

    default_prefix = 'dump'

    def __init__(self, out_file_path: str, collect_device: str = 'cpu'):
        super().__init__(collect_device=collect_device)
        if not out_file_path.endswith('.json'):
            raise ValueError(f'DumpDetResults writes json; got {out_file_path}')
        self.out_file_path = out_file_path

    def process(self, data_batch, data_samples) -> None:
        for sample in data_samples:
            if not isinstance(sample, dict):
                sample = sample.to_dict()
            pred = sample['pred_instances']
            img_id = sample.get('img_id')
            if img_id is None:
                raise KeyError('DumpDetResults: data sample has no img_id in its metainfo')
            self.results.append(dict(
                img_id=img_id,
                bboxes=torch.as_tensor(pred['bboxes']).detach().cpu().float(),
                scores=torch.as_tensor(pred['scores']).detach().cpu().float(),
                labels=torch.as_tensor(pred['labels']).detach().cpu().long()))

    def compute_metrics(self, results: list) -> dict:
        cat_ids = (self.dataset_meta or {}).get('cat_ids')
        entries = []
        for res in results:
            boxes = xyxy_to_xywh(res['bboxes']).tolist()
            for box, score, label in zip(boxes, res['scores'].tolist(), res['labels'].tolist()):
                if not math.isfinite(score):
                    raise ValueError(f'image {res["img_id"]}: non-finite score {score}')
                cat = cat_ids[label] if cat_ids is not None else label
                entries.append(dict(image_id=res['img_id'], category_id=cat,
                                    bbox=[round(v, 2) for v in box], score=round(score, 5)))
        if cat_ids is None:
            print_log(f'{self.out_file_path}: the dataset has no cat_ids; category_id holds the '
                      'label index', logger='current', level=30)
        atomic_write_bytes(json.dumps(entries).encode(), self.out_file_path)
        print_log(f'wrote {len(entries)} detections to {self.out_file_path}', logger='current')
        return {}
