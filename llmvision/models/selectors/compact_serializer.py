"""A short REC-selector prompt for tiny, randomly initialised selectors (issue 18).

The released prompt (:class:`.serializer.BoxListPromptSerializer`) spends ~300 tokens on an
instruction, pixel coordinates with one decimal (every digit one token) and the query at the
end. A pretrained LLM reads that easily; a random 4-layer model trained on a few thousand prompts
does not (benchmarks/RESULTS.md, "REC selector on the synthetic set": every such run stayed at
the answer prior). This serializer writes the same information in ~10 tokens per box::

    the red star on the left
    3524 red star 0
    7633 blue circle 1
    8525 red star 2
    answer

Line ``i`` (``line_format``): four single digits, the box centre x and y in tenths of the image
(``grid``) and its width and height in twentieths (``size_grid``), each clamped to 0-9; the label;
the printed index last, right after the label. The query comes first, so every box line can be
compared with it as it is read, and the index token is next to the words that pick it: a 2-layer
model can gather the label onto the index token and then copy the index whose label matches the
query (measured: with the index first, ``'0 red star 3524'``, a 2-layer model stayed at the answer
prior on label matching alone for 800 steps).
The chat format is a plain format string (no chat template). Only the tiny recipe uses it
(``configs/llm_wrapper/llm_wrapper_tiny_synthetic.py``); the real-model configs keep the released
prompt.
"""
from typing import Sequence

from llmvision.registry import TASK_UTILS
from llmvision.structures.candidates import CandidateSet

from .serializer import SerializedPrompt, _one_line


def _cell(v: float, side: float, bins: int) -> int:
    return int(min(9, max(0, int(v / max(side, 1e-6) * bins))))


@TASK_UTILS.register_module()
class CompactBoxPromptSerializer:
    """Query line, one short line per box, then ``answer`` (see the module docstring).

    Args:
        grid: bins per image side for the box centre (digits 0-9: at most 10 is exact).
        size_grid: bins per image side for width and height (clamped at 9).
        index_start: number printed for the first box.
        image_size: ``(H, W)`` in pixels that the coordinates are normalised by. The selector and
            the dataset builder call ``serialize(blocks, query)`` without the image, so this is a
            fixed size: the synthetic set's images all share one (``--image-size``, default
            256 x 320). A call may still pass ``image_size``.
        chat_format: format string with ``{prompt}`` wrapped around the user text.
        lowercase_labels: lower-case the box labels.
        line_format: one box line, with ``{index}``, ``{label}`` and ``{coords}``.
    """

    def __init__(self, image_size, grid: int = 10, size_grid: int = 20, index_start: int = 0,
                 chat_format: str = '{prompt}\nanswer', lowercase_labels: bool = True,
                 line_format: str = '{coords} {label} {index}'):
        if not 1 <= grid <= 10:
            raise ValueError(f'grid must be in [1, 10] (one digit per coordinate), got {grid}')
        if '{prompt}' not in chat_format:
            raise ValueError(f"chat_format must contain '{{prompt}}', got {chat_format!r}")
        if len(image_size) != 2 or min(image_size) <= 0:
            raise ValueError(f'image_size must be (H, W) > 0, got {image_size!r}')
        self.grid, self.size_grid = grid, size_grid
        self.index_start = index_start
        self.image_size = image_size
        self.chat_format = chat_format
        self.lowercase_labels = lowercase_labels
        for key in ('{index}', '{label}', '{coords}'):
            if key not in line_format:
                raise ValueError(f'line_format must contain {key}, got {line_format!r}')
        self.line_format = line_format

    def box_digits(self, box, height: float, width: float) -> str:
        """``'xywh'`` digits of one pixel xyxy box (centre in ``grid``, size in ``size_grid`` bins)."""
        x1, y1, x2, y2 = (float(v) for v in box)
        return (f'{_cell((x1 + x2) / 2, width, self.grid)}{_cell((y1 + y2) / 2, height, self.grid)}'
                f'{_cell(x2 - x1, width, self.size_grid)}{_cell(y2 - y1, height, self.size_grid)}')

    def serialize(self, blocks: Sequence[CandidateSet], query: str, image_size=None) -> SerializedPrompt:
        """``blocks`` + expression -> prompt; indices run on across blocks.

        ``image_size`` ``(H, W)`` (default: the constructor's).
        """
        if isinstance(blocks, CandidateSet):
            blocks = [blocks]
        h, w = (float(v) for v in (image_size if image_size is not None else self.image_size))
        lines, index_map = [' '.join(str(query).split()).lower()], []
        for bi, block in enumerate(blocks):
            for j in range(len(block)):
                label = _one_line(block.labels[j]).strip()
                label = label.lower() if self.lowercase_labels else label
                lines.append(self.line_format.format(index=len(index_map) + self.index_start, label=label,
                                                     coords=self.box_digits(block.bboxes[j], h, w)))
                index_map.append((bi, j))
        return SerializedPrompt('\n'.join(lines), index_map, self.index_start)

    def chat_text(self, user_text: str, tokenizer=None) -> str:
        """Wrap ``user_text`` with :attr:`chat_format` (no chat template)."""
        return self.chat_format.format(prompt=user_text)
