"""``tools/test.py --out results.json``: dump predictions in COCO/LVIS result format.

Each entry: ``{"image_id", "category_id", "bbox": [x, y, w, h], "score"}`` (pixels of the original
image). ``category_id`` maps the model's label through ``dataset_meta['cat_ids']`` when the
dataset provides it (COCO/LVIS ids); otherwise the label index is written, with a warning.
Padded duplicates of the distributed sampler are dropped (one entry set per image).
"""
import numpy as np
from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from llmvision.evaluation.predictions import dedupe_records, records_to_results, results2json, sample_to_record
from llmvision.registry import METRICS


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
        self.results.extend(sample_to_record(s) for s in data_samples)

    def compute_metrics(self, results: list) -> dict:
        records = dedupe_records(results)
        cat_ids = (self.dataset_meta or {}).get('cat_ids')
        if cat_ids is None:
            num = max((int(r['labels'].max()) + 1 for r in records if len(r['labels'])), default=0)
            cat_ids = np.arange(num)
            print_log(f'{self.out_file_path}: the dataset has no cat_ids; category_id holds the '
                      'label index', logger='current', level=30)
        entries = records_to_results(records, cat_ids)
        results2json(entries, self.out_file_path)
        print_log(f'wrote {len(entries)} detections of {len(records)} images to '
                  f'{self.out_file_path}', logger='current')
        return {}
