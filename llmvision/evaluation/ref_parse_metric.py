"""Share of REF-VLM answers that do not parse (``parse_error`` set by ``REFVLMModel.predict``)."""
from typing import Dict, List, Optional, Sequence

from mmengine.evaluator import BaseMetric

from llmvision.registry import METRICS

from .predictions import get_field


@METRICS.register_module()
class RefParseMetric(BaseMetric):
    """``parse_fail_rate`` (answers whose triplets did not parse) and ``no_box_rate`` (answers with no
    decoded box) over the evaluated samples, deduplicated by metainfo ``sample_idx`` when present."""
    default_prefix = 'ref_vlm'

    def __init__(self, collect_device: str = 'cpu', prefix: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix)

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            inst = get_field(s, 'pred_instances')
            n = 0 if inst is None else len(get_field(inst, 'bboxes', []))
            self.results.append({'key': get_field(s, 'sample_idx', id(s)),
                                 'failed': get_field(s, 'parse_error') is not None, 'no_box': n == 0})

    def compute_metrics(self, results: List[dict]) -> Dict[str, float]:
        uniq = {r['key']: r for r in results}.values()
        n = max(1, len(uniq))
        return {'parse_fail_rate': sum(r['failed'] for r in uniq) / n,
                'no_box_rate': sum(r['no_box'] for r in uniq) / n, 'num_answers': float(len(uniq))}
