"""VQA accuracy: normalised exact match per question type and overall, next to the text-only prior.

A sample carries ``pred_text`` (prediction), metainfo ``gt_answer``, ``question_type`` (``None`` -> ``'all'``) and
``question`` (the question text, for the prior). Answers are compared after :func:`normalize_answer` (lower case,
outer whitespace and punctuation stripped, inner whitespace collapsed).

Text-only prior (from ``train_ann_file``, a LLaVA json with ``question_type`` per record): for each sample the
most frequent training answer to the same question text (normalised), or, for a question never seen in
training, the most frequent answer of its type (ties -> alphabetically first). This is what a model that
ignores the image can reach at best on average; the constant per type alone is weaker whenever the answer depends
on the question's words (e.g. colours of common categories), so it is reported too (``const_prior``).

Output keys (percent): ``vqa/overall``, ``vqa/prior/overall``, ``vqa/gain`` (overall - prior), and per type
``vqa/{type}``, ``vqa/prior/{type}``, ``vqa/const_prior/{type}``. ``overall`` averages over the samples (micro)
of every type except ``exclude_from_overall`` (``caption`` by default: free-form, reported on its own).
"""
import json
import logging
import re
from collections import Counter, OrderedDict
from typing import Dict, Optional, Sequence, Tuple

from mmengine.evaluator import BaseMetric
from mmengine.logging import print_log

from llmvision.registry import METRICS

from .predictions import get_field

_PUNCT = ' \t\n.,!?;:"\''


def normalize_answer(text) -> str:
    """``'  Yes. '`` -> ``'yes'``; ``'Two  red'`` -> ``'two red'`` (``None`` -> ``''``)."""
    return re.sub(r'\s+', ' ', str(text or '').lower()).strip(_PUNCT)


def _best(counter: Counter) -> str:
    return min(counter.items(), key=lambda kv: (-kv[1], kv[0]))[0]


def answer_prior(train_ann_file: str) -> Tuple[Dict[str, str], Dict[Tuple[str, str], str]]:
    """Most frequent normalised training answer (last gpt turn) per question type, and per ``(question type,
    normalised last human question)``, from a LLaVA json file."""
    with open(train_ann_file, encoding='utf-8') as f:
        records = json.load(f)
    per_type: Dict[str, Counter] = {}
    per_question: Dict[Tuple[str, str], Counter] = {}
    for i, rec in enumerate(records):
        turns = rec.get('conversations', [])
        answers = [t for t in turns if t.get('from') in ('gpt', 'assistant')]
        questions = [t for t in turns if t.get('from') in ('human', 'user')]
        if not answers or not questions:
            raise ValueError(f'{train_ann_file}: record {i} (id {rec.get("id")!r}) has no question or answer')
        qtype = rec.get('question_type') or 'all'
        answer = normalize_answer(answers[-1]['value'])
        per_type.setdefault(qtype, Counter())[answer] += 1
        per_question.setdefault((qtype, normalize_answer(questions[-1]['value'].replace('<image>', ' '))),
                                Counter())[answer] += 1
    return ({t: _best(c) for t, c in per_type.items()}, {k: _best(c) for k, c in per_question.items()})


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
        self._prior = None

    @property
    def prior(self) -> Tuple[Dict[str, str], Dict[Tuple[str, str], str]]:
        """``(per type, per (type, question))`` most frequent training answers (empty without a train file)."""
        if self._prior is None:
            self._prior = answer_prior(self.train_ann_file) if self.train_ann_file else ({}, {})
        return self._prior

    def process(self, data_batch, data_samples: Sequence) -> None:
        for s in data_samples:
            pred = get_field(s, 'pred_text')
            if pred is None:
                raise ValueError(f'sample {get_field(s, "sample_id")!r}: no pred_text (run the model in predict mode)')
            self.results.append(dict(sample_id=get_field(s, 'sample_id'),
                                     question_type=get_field(s, 'question_type') or 'all',
                                     question=normalize_answer(get_field(s, 'question')),
                                     pred=normalize_answer(pred), gt=normalize_answer(get_field(s, 'gt_answer'))))

    def compute_metrics(self, results: list) -> Dict[str, float]:
        by_type: Dict[str, list] = OrderedDict()
        for r in sorted(results, key=lambda r: r['question_type']):
            by_type.setdefault(r['question_type'], []).append(r)
        out: Dict[str, float] = OrderedDict()
        hits = prior_hits = n = 0
        const, per_question = self.prior
        for qtype, rs in by_type.items():
            correct = sum(r['pred'] == r['gt'] for r in rs)
            out[qtype] = 100.0 * correct / len(rs)
            p_correct = sum(r['gt'] == per_question.get((qtype, r['question']), const.get(qtype)) for r in rs)
            if const:
                out[f'prior/{qtype}'] = 100.0 * p_correct / len(rs)
                out[f'const_prior/{qtype}'] = 100.0 * sum(r['gt'] == const.get(qtype) for r in rs) / len(rs)
            if qtype not in self.exclude:
                hits, prior_hits, n = hits + correct, prior_hits + p_correct, n + len(rs)
        if n:
            out['overall'] = 100.0 * hits / n
            if const:
                out['prior/overall'] = 100.0 * prior_hits / n
                out['gain'] = out['overall'] - out['prior/overall']
        nan = float('nan')
        lines = [f'{"type":<10} {"n":>5} {"acc":>6} {"prior":>6} {"const":>6}  constant answer']
        for qtype, rs in by_type.items():
            lines.append(f'{qtype:<10} {len(rs):>5} {out[qtype]:6.1f} {out.get(f"prior/{qtype}", nan):6.1f} '
                         f'{out.get(f"const_prior/{qtype}", nan):6.1f}  {const.get(qtype, "-")!r}')
        if n:
            lines.append(f'{"overall":<10} {n:>5} {out["overall"]:6.1f} '
                         f'{out.get("prior/overall", nan):6.1f}         (without {sorted(self.exclude)})')
        print_log('VQA accuracy (%)\n' + '\n'.join(lines), logger='current', level=logging.INFO)
        return dict(out)
