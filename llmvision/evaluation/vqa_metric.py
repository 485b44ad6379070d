"""VQA accuracy: normalised exact match per question type and overall, next to the text-only prior.

A sample carries ``pred_text`` (prediction), metainfo ``gt_answer`` and ``question_type`` (``None`` ->
``'all'``). Answers are compared after :func:`normalize_answer` (lower case, outer whitespace and
punctuation stripped, inner whitespace collapsed).

The text-only prior of a type is the best constant answer: the most frequent normalised training answer
of that type (from ``train_ann_file``, a LLaVA json with ``question_type`` per record; ties -> the
alphabetically first), scored on the evaluated samples. A model that ignores the image cannot beat it
on average, so ``overall - prior/overall`` is what the image bought.

Output keys (percent): ``vqa/overall``, ``vqa/prior/overall``, ``vqa/gain`` (overall - prior), and per type
``vqa/{type}``, ``vqa/prior/{type}``. ``overall`` averages over the samples (micro) of every type except
``exclude_from_overall`` (``caption`` by default: free-form, reported on its own).
"""
import json
import logging
import re
from collections import Counter, OrderedDict
from typing import Dict, Optional, Sequence

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from llmvision.registry import METRICS

from .predictions import get_field

_PUNCT = ' \t\n.,!?;:"\''


def normalize_answer(text) -> str:
    """``'  Yes. '`` -> ``'yes'``; ``'Two  red'`` -> ``'two red'`` (``None`` -> ``''``)."""
    return re.sub(r'\s+', ' ', str(text or '').lower()).strip(_PUNCT)


def answer_prior(train_ann_file: str) -> Dict[str, str]:
    """``{question_type: most frequent normalised answer}`` of a LLaVA json training file (last gpt turn)."""
    with open(train_ann_file, encoding='utf-8') as f:
        records = json.load(f)
    counts: Dict[str, Counter] = {}
    for i, rec in enumerate(records):
        turns = [t for t in rec.get('conversations', []) if t.get('from') in ('gpt', 'assistant')]
        if not turns:
            raise ValueError(f'{train_ann_file}: record {i} (id {rec.get("id")!r}) has no answer')
        qtype = rec.get('question_type') or 'all'
        counts.setdefault(qtype, Counter())[normalize_answer(turns[-1]['value'])] += 1
    return {t: min(c.items(), key=lambda kv: (-kv[1], kv[0]))[0] for t, c in counts.items()}


@METRICS.register_module()
class VQAAccuracyMetric(BaseMetric):
    """Normalised exact-match accuracy per question type, overall, and the text-only prior.

    Args:
        train_ann_file: training LLaVA json for the prior (``None``: no prior keys).
        exclude_from_overall: question types left out of ``overall`` (still reported per type).
    """
    default_prefix = 'vqa'

    def __init__(self, train_ann_file: Optional[str] = None, exclude_from_overall: Sequence[str] = ('caption',),
                 collect_device: str = 'cpu', prefix: Optional[str] = None, collect_dir: Optional[str] = None):
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.train_ann_file = train_ann_file
        self.exclude = set(exclude_from_overall)
        self._prior: Optional[Dict[str, str]] = None

    @property
    def prior(self) -> Dict[str, str]:
        if self._prior is None:
            self._prior = answer_prior(self.train_ann_file) if self.train_ann_file else {}
        return self._prior

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            pred = get_field(s, 'pred_text')
            if pred is None:
                raise ValueError(f'sample {get_field(s, "sample_id")!r}: no pred_text (run the model in predict mode)')
            self.results.append(dict(sample_id=get_field(s, 'sample_id'),
                                     question_type=get_field(s, 'question_type') or 'all',
                                     pred=normalize_answer(pred), gt=normalize_answer(get_field(s, 'gt_answer'))))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        by_type: Dict[str, list] = OrderedDict()
        for r in sorted(results, key=lambda r: r['question_type']):
            by_type.setdefault(r['question_type'], []).append(r)
        out: Dict[str, float] = OrderedDict()
        hits = prior_hits = n = 0
        prior = self.prior
        for qtype, rs in by_type.items():
            correct = sum(r['pred'] == r['gt'] for r in rs)
            out[qtype] = 100.0 * correct / len(rs)
            p_correct = sum(r['gt'] == prior.get(qtype) for r in rs)
            if prior:
                out[f'prior/{qtype}'] = 100.0 * p_correct / len(rs)
            if qtype not in self.exclude:
                hits, prior_hits, n = hits + correct, prior_hits + p_correct, n + len(rs)
        if n:
            out['overall'] = 100.0 * hits / n
            if prior:
                out['prior/overall'] = 100.0 * prior_hits / n
                out['gain'] = out['overall'] - out['prior/overall']
        lines = [f'{"type":<10} {"n":>5} {"acc":>6} {"prior":>6}  prior answer']
        for qtype, rs in by_type.items():
            lines.append(f'{qtype:<10} {len(rs):>5} {out[qtype]:6.1f} {out.get(f"prior/{qtype}", float("nan")):6.1f}'
                         f'  {prior.get(qtype, "-")!r}')
        if n:
            lines.append(f'{"overall":<10} {n:>5} {out["overall"]:6.1f} '
                         f'{out.get("prior/overall", float("nan")):6.1f}  (without {sorted(self.exclude)})')
        print_log('VQA accuracy (%)\n' + '\n'.join(lines), logger='current', level=logging.INFO)
        return dict(out)
