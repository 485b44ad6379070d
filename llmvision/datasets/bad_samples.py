"""What a dataset does with a bad sample: raise a clear error, or log and count a skip.

Every problem found in an annotation file or an image raises :class:`BadSampleError` whose
message names the file, the line (jsonl line number, 1-based) or the key. A dataset built with
``on_bad_sample='skip'`` hands the error to its :class:`BadSamplePolicy`, which logs a warning
through mmengine's current logger, counts it (``policy.num_skipped``, also exposed as
``dataset.num_skipped``) and raises once more than ``max_bad_samples`` were skipped.
Nothing is ever dropped silently.

Counts are per process: with dataloader workers, each worker counts the image errors it meets
(``max_bad_samples`` applies per process). The per-reason counts (:data:`SKIP_REASONS`, from the
error's ``kind``) live in a shared-memory tensor, so skips counted in dataloader workers are seen
by the main process: :meth:`BadSamplePolicy.skipped_by_reason` (summed over the datasets and ranks
by ``llmvision.engine.hooks.BadSampleSummaryHook`` at the end of training).
"""
import logging
from typing import Callable, Dict, Iterable, List, Optional

import torch
from mmengine.logging import print_log

# why a sample was skipped (``BadSampleError.kind``); 'bad annotation' is the default
SKIP_REASONS = ('bad annotation', 'bad box', 'bad text', 'bad span', 'bad image size',
                'missing reference', 'missing image', 'unreadable image')


class BadSampleError(ValueError):
    """A sample that cannot be used as it is: malformed line, bad box, missing image, ...

    Args:
        message: what is wrong, with the key / value at fault.
        source: the file the problem is in (annotation or image file).
        line: 1-based line number for jsonl files, when known.
        kind: one of :data:`SKIP_REASONS` (default ``'bad annotation'``), for the skip summary.
    """

    def __init__(self, message: str, source: Optional[str] = None, line: Optional[int] = None,
                 kind: Optional[str] = None):
        if kind is not None and kind not in SKIP_REASONS:
            raise ValueError(f'BadSampleError kind must be one of {SKIP_REASONS}, got {kind!r}')
        self.reason = message
        self.source = source
        self.line = line
        self.kind = kind or 'bad annotation'
        where = ''
        if source is not None:
            where = f'{source}' + (f', line {line}' if line is not None else '') + ': '
        super().__init__(where + message)


class BadSamplePolicy:
    """Raise or skip-and-count bad samples.

    Args:
        mode: ``'raise'`` (default) re-raises every :class:`BadSampleError`; ``'skip'`` logs it and counts it.
        max_bad_samples: with ``'skip'``, the most skips tolerated; one more raises. ``None`` = no limit.
    """

    MODES = ('raise', 'skip')

    def __init__(self, mode: str = 'raise', max_bad_samples: Optional[int] = None):
        if mode not in self.MODES:
            raise ValueError(f"on_bad_sample must be one of {self.MODES}, got {mode!r}")
        if max_bad_samples is not None and max_bad_samples < 0:
            raise ValueError(f'max_bad_samples must be >= 0 or None, got {max_bad_samples}')
        self.mode = mode
        self.max_bad_samples = max_bad_samples
        self.num_skipped = 0
        self.reasons: List[str] = []
        # shared with dataloader workers (fork or spawn): a skip in a worker is counted here too
        self.counts = torch.zeros(len(SKIP_REASONS), dtype=torch.int64).share_memory_()

    def skipped_by_reason(self) -> Dict[str, int]:
        """``{reason: count}`` of the skips of this dataset in this process and its workers."""
        return {kind: int(n) for kind, n in zip(SKIP_REASONS, self.counts.tolist()) if n}

    def handle(self, error: BadSampleError) -> None:
        """Re-raise ``error`` (mode 'raise' or limit exceeded) or log and count it."""
        if self.mode == 'raise':
            raise error
        self.num_skipped += 1
        self.counts[SKIP_REASONS.index(error.kind)] += 1
        if len(self.reasons) < 1000:
            self.reasons.append(str(error))
        if self.max_bad_samples is not None and self.num_skipped > self.max_bad_samples:
            raise BadSampleError(
                f'more than max_bad_samples={self.max_bad_samples} bad samples skipped; '
                f'last one: {error}') from error
        print_log(f'skipped bad sample ({self.num_skipped} so far): {error}',
                  logger='current', level=logging.WARNING)


def parse_with_policy(entries: Iterable, parse: Callable, policy: BadSamplePolicy, source: str,
                      describe: Callable[[int, object], str]) -> List[dict]:
    """The one bad-sample loop: ``parse(entry)`` -> a record or a list of records, per entry.

    A :class:`BadSampleError` raised for an entry is handed to ``policy`` (raise, or log, count
    and go on) with ``source`` (the file) and ``describe(index, entry)`` (e.g. ``"image id 5"``)
    put in front of its message.
    """
    records = []
    for i, entry in enumerate(entries):
        try:
            out = parse(entry)
        except BadSampleError as error:
            policy.handle(BadSampleError(f'{describe(i, entry)}: {error.reason}', source=error.source or source,
                                         line=error.line, kind=error.kind))
            continue
        records.extend(out if isinstance(out, list) else [out])
    return records


def describe_image(_, image: dict) -> str:
    """``'image id <id>'``: the ``describe`` of loaders whose entries are COCO-style image dicts."""
    return f"image id {image.get('id')!r}"
