"""What a dataset does with a bad sample: raise a clear error, or log and count a skip.

Every problem found in an annotation file or an image raises :class:`BadSampleError` whose
message names the file, the line (jsonl line number, 1-based) or the key. A dataset built with
``on_bad_sample='skip'`` hands the error to its :class:`BadSamplePolicy`, which logs a warning
through mmengine's current logger, counts it (``policy.num_skipped``, also exposed as
``dataset.num_skipped``) and raises once more than ``max_bad_samples`` were skipped.
Nothing is ever dropped silently.

Counts are per process: with dataloader workers, each worker counts the image errors it meets.
"""
import logging
from typing import List, Optional

from mmengine.logging import print_log


class BadSampleError(ValueError):
    """A sample that cannot be used as it is: malformed line, bad box, missing image, ...

    Args:
        message: what is wrong, with the key / value at fault.
        source: the file the problem is in (annotation or image file).
        line: 1-based line number for jsonl files, when known.
    """

    def __init__(self, message: str, source: Optional[str] = None, line: Optional[int] = None):
        self.reason = message
        self.source = source
        self.line = line
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

    def handle(self, error: BadSampleError) -> None:
        """Re-raise ``error`` (mode 'raise' or limit exceeded) or log and count it."""
        if self.mode == 'raise':
            raise error
        self.num_skipped += 1
        if len(self.reasons) < 1000:
            self.reasons.append(str(error))
        if self.max_bad_samples is not None and self.num_skipped > self.max_bad_samples:
            raise BadSampleError(
                f'more than max_bad_samples={self.max_bad_samples} bad samples skipped; '
                f'last one: {error}') from error
        print_log(f'skipped bad sample ({self.num_skipped} so far): {error}',
                  logger='current', level=logging.WARNING)
