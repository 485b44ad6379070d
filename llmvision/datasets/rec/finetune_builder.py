"""Records + candidate blocks -> (prompt, answer) samples for the REC selector.

Rules (REFERENCE.md sections 5 and 9: the released LLM-wrapper recipe by default, every rule
configurable): samples with at most one candidate are skipped; the label is the candidate with the
highest IoU to the ground truth; training keeps a sample only if that IoU beats ``iou_thr`` (> 0.5,
the "CLEAN" subset); a prompt over ``max_tokens`` tokens (chat template included) drops the sample;
each kept sample gets shuffled copies with the label remapped: the released table by candidate
count (N=2: seed 2; 3: seeds 2, 6; 4: seeds 0, 2, 7; >= 5: seeds 2, 4, 6, 7; the order is
``random.seed(s); random.shuffle(range(N))``, so a copy may repeat the original order, as released)
or ``num_shuffles`` distinct random orders. Every decision is counted in the returned ``Counter``.
"""
import random
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple, Union

from llmvision.evaluation.rec_accuracy import best_candidate, iou_passes
from llmvision.models.selectors.serializer import BoxListPromptSerializer
from llmvision.structures.candidates import CandidateSet, clip_candidates


def shuffled_copies(blocks: Sequence[CandidateSet], label: Tuple[int, int], num: int,
                    rng: random.Random) -> List[Tuple[List[CandidateSet], Tuple[int, int]]]:
    """Up to ``num`` distinct re-orderings (each block shuffled) with the label remapped.

    The identity order is excluded; fewer copies come back when there are not enough orders.
    """
    sizes = [len(b) for b in blocks]
    total = 1
    for n in sizes:
        total *= _factorial(n)
    num = min(num, total - 1)
    seen = {tuple(tuple(range(n)) for n in sizes)}
    out = []
    while len(out) < num:
        perms = tuple(tuple(rng.sample(range(n), n)) for n in sizes)
        if perms in seen:
            continue
        seen.add(perms)
        new_blocks = [b.subset(list(p)) for b, p in zip(blocks, perms)]
        out.append((new_blocks, (label[0], perms[label[0]].index(label[1]))))
    return out


RELEASED_SHUFFLE_SEEDS = {2: (2,), 3: (2, 6), 4: (0, 2, 7)}
RELEASED_SHUFFLE_SEEDS_5_PLUS = (2, 4, 6, 7)


def released_shuffled_copies(blocks: Sequence[CandidateSet], label: Tuple[int, int]
                             ) -> List[Tuple[List[CandidateSet], Tuple[int, int]]]:
    """The released augmentation: one copy per seed of the table for the candidate count N.

    Copy ``s`` lists the candidates in the order ``random.Random(s).shuffle(list(range(n)))`` of
    each block (the released code shuffles its single block this way; with several blocks each
    block is shuffled with the same seed).
    """
    total = sum(len(b) for b in blocks)
    seeds = RELEASED_SHUFFLE_SEEDS.get(total, RELEASED_SHUFFLE_SEEDS_5_PLUS if total >= 5 else ())
    out = []
    for seed in seeds:
        perms = []
        for b in blocks:
            order = list(range(len(b)))
            random.Random(seed).shuffle(order)
            perms.append(order)
        new_blocks = [b.subset(order) for b, order in zip(blocks, perms)]
        out.append((new_blocks, (label[0], perms[label[0]].index(label[1]))))
    return out


def _factorial(n: int) -> int:
    return 1 if n < 2 else n * _factorial(n - 1)


def build_selector_samples(records: Sequence[Dict], sources: Sequence[Callable],
                           serializer: BoxListPromptSerializer, tokenizer=None,
                           train: bool = True, iou_thr: float = 0.5, inclusive: bool = False,
                           num_shuffles: Union[int, str] = 'released', max_tokens: Optional[int] = 1024,
                           clip: bool = False, min_candidates: int = 2,
                           seed: int = 0) -> Tuple[List[Dict], Counter]:
    """Build selector samples.

    Args:
        records: RefCOCO records (:mod:`.refer_records`): ``key``, ``expression``, ``gt_bbox``,
            ``height``, ``width``, ...
        sources: candidate sources; each ``source(record) -> CandidateSet`` is one prompt block.
        serializer: the prompt serializer (the selector must use the same settings).
        tokenizer: with a chat template; needed for the ``max_tokens`` rule (``None``: no rule).
        train: apply the candidate-count and IoU filters, augmentation and the token limit;
            otherwise keep every record once (``answer`` is the best candidate, or ``None``
            without candidates).
        iou_thr / inclusive: the keep rule ``best IoU > iou_thr`` (``>=`` if inclusive).
        num_shuffles: ``'released'`` (the seed table by candidate count) or the number of extra
            distinct random orders per kept training sample (0: none).
        max_tokens: token budget of the chat-templated prompt (the original order is measured;
            over budget drops the sample with its copies, as released).
        clip: clip candidate boxes to the image and drop those outside it (counted). The released
            code does not (its prompt only prints negative x1 / y1 as 0, see the serializer).
        min_candidates: training skips samples with fewer candidates (released: 2).
        seed: seed of the random orders (``num_shuffles`` an int).

    Returns:
        ``(samples, stats)``; a sample is the record plus ``candidates`` (blocks), ``prompt``
        (user text), ``answer`` (printed index as ``str`` or ``None``), ``label``
        (``(block, box)`` or ``None``), ``best_iou`` and ``copy`` (0 = original order).
    """
    if not (num_shuffles == 'released' or (isinstance(num_shuffles, int) and num_shuffles >= 0)):
        raise ValueError(f"num_shuffles must be 'released' or an int >= 0, got {num_shuffles!r}")
    rng = random.Random(seed)
    stats: Counter = Counter()
    samples = []
    for rec in records:
        stats['records'] += 1
        blocks = []
        for src in sources:
            cands = src(rec)
            if clip:
                cands, dropped = clip_candidates(cands, (rec['height'], rec['width']))
                stats['boxes_outside_image'] += dropped
            blocks.append(cands)
        if train and sum(len(b) for b in blocks) < min_candidates:
            stats['too_few_candidates'] += 1
            continue
        label, iou = best_candidate(blocks, rec['gt_bbox'])
        if label is None:
            stats['no_candidates'] += 1
            if train:
                continue
        elif not iou_passes(iou, iou_thr, inclusive):
            stats['best_iou_below_thr'] += 1
            if train:
                continue
        if train and tokenizer is not None and max_tokens is not None:
            text = serializer.serialize(blocks, rec['expression']).text
            ids = tokenizer(serializer.chat_text(text, tokenizer), add_special_tokens=False)['input_ids']
            if len(ids) > max_tokens:
                stats['over_token_limit'] += 1
                continue
        variants = [(blocks, label)]
        if train and num_shuffles == 'released':
            variants += released_shuffled_copies(blocks, label)
        elif train and num_shuffles > 0:
            variants += shuffled_copies(blocks, label, num_shuffles, rng)
        for copy, (vblocks, vlabel) in enumerate(variants):
            prompt = serializer.serialize(vblocks, rec['expression'])
            answer = None if vlabel is None else str(prompt.global_index(*vlabel))
            samples.append(dict(rec, candidates=vblocks, prompt=prompt.text, answer=answer,
                                label=vlabel, best_iou=iou, copy=copy))
            stats['samples'] += 1
            stats['augmented_copies'] += int(copy > 0)
    return samples, stats


__all__ = ['build_selector_samples', 'best_candidate', 'shuffled_copies', 'released_shuffled_copies',
           'iou_passes']
