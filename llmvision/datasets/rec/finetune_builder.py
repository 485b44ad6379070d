"""Records + candidate blocks -> (prompt, answer) samples for the REC selector.

Rules (REFERENCE.md section 5, all configurable): the label is the candidate with the highest
IoU to the ground truth; training keeps a sample only if that IoU beats ``iou_thr`` (> 0.5);
each kept sample gets up to ``num_shuffles`` extra copies with the candidates shuffled
(inside each source block) and the label remapped; prompts over ``max_tokens`` tokens (chat
template included) are dropped. Every decision is counted in the returned ``Counter``.
"""
import random
from collections import Counter
from typing import Callable, Dict, List, Optional, Sequence, Tuple

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


def _factorial(n: int) -> int:
    return 1 if n < 2 else n * _factorial(n - 1)


def build_selector_samples(records: Sequence[Dict], sources: Sequence[Callable],
                           serializer: BoxListPromptSerializer, tokenizer=None,
                           train: bool = True, iou_thr: float = 0.5, inclusive: bool = False,
                           num_shuffles: int = 4, max_tokens: Optional[int] = 1024,
                           clip: bool = True, seed: int = 0) -> Tuple[List[Dict], Counter]:
    """Build selector samples.

    Args:
        records: RefCOCO records (:mod:`.refer_records`): ``key``, ``expression``, ``gt_bbox``,
            ``height``, ``width``, ...
        sources: candidate sources; each ``source(record) -> CandidateSet`` is one prompt block.
        serializer: the prompt serializer (the selector must use the same settings).
        tokenizer: with a chat template; needed for the ``max_tokens`` rule (``None``: no rule).
        train: apply the IoU filter, augmentation and the token limit; otherwise keep every
            record once (``answer`` is the best candidate, or ``None`` without candidates).
        iou_thr / inclusive: the keep rule ``best IoU > iou_thr`` (``>=`` if inclusive).
        num_shuffles: extra shuffled copies per kept training sample.
        max_tokens: token budget of the chat-templated prompt.
        clip: clip candidate boxes to the image and drop those outside it (counted).
        seed: augmentation seed.

    Returns:
        ``(samples, stats)``; a sample is the record plus ``candidates`` (blocks), ``prompt``
        (user text), ``answer`` (printed index as ``str`` or ``None``), ``label``
        (``(block, box)`` or ``None``), ``best_iou`` and ``copy`` (0 = original order).
    """
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
        label, iou = best_candidate(blocks, rec['gt_bbox'])
        if label is None:
            stats['no_candidates'] += 1
            if train:
                continue
        elif not iou_passes(iou, iou_thr, inclusive):
            stats['best_iou_below_thr'] += 1
            if train:
                continue
        variants = [(blocks, label)]
        if train and num_shuffles > 0:
            variants += shuffled_copies(blocks, label, num_shuffles, rng)
        for copy, (vblocks, vlabel) in enumerate(variants):
            prompt = serializer.serialize(vblocks, rec['expression'])
            if train and tokenizer is not None and max_tokens is not None:
                n = len(tokenizer(serializer.chat_text(prompt.text, tokenizer),
                                  add_special_tokens=False)['input_ids'])
                if n > max_tokens:
                    stats['over_token_limit'] += 1
                    continue
            answer = None if vlabel is None else str(prompt.global_index(*vlabel))
            samples.append(dict(rec, candidates=vblocks, prompt=prompt.text, answer=answer,
                                label=vlabel, best_iou=iou, copy=copy))
            stats['samples'] += 1
            stats['augmented_copies'] += int(copy > 0)
    return samples, stats


__all__ = ['build_selector_samples', 'best_candidate', 'shuffled_copies', 'iou_passes']
