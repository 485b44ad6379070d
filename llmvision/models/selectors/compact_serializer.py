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
With ``position_words=True`` each box whose label occurs more than once among the candidates also gets
coarse position words, computed from the candidate boxes of that label (:func:`candidate_position_words`) and
written before the label: ``left`` / ``right`` (smallest / largest centre x), ``top`` / ``bottom`` (centre y),
``small`` / ``large`` (area); a box in the middle of three or more gets no word on that axis, a box whose
label is unique gets none at all::

    the red star on the left
    3524 left bottom large red star=0
    7633 blue circle=1
    8525 right top small red star=2

The synthetic expressions that single out one of several same-label objects say which one with such a word
(``the red star on the left``, ``the leftmost red star``, ``the upper ...``, ``... at the bottom``, ``the larger
...``, ``the little ...``) or with a relation to an object of another, unique label (``the red star left of the
blue circle``: the generator emits it only when no other red star is even loosely left of the circle, so the
target is then the leftmost red star too). :func:`query_position_words` maps those words to the same canonical
words, so choosing one of two same-label boxes becomes matching words to a box line, as for the label itself;
with raw coordinate digits a tiny model would have to learn to compare numbers across lines.
The chat format is a plain format string (no chat template). Only the tiny recipe uses it
(``configs/llm_wrapper/llm_wrapper_tiny_synthetic.py``); the real-model configs keep the released
prompt.
"""
from collections import defaultdict
from typing import Dict, List, Sequence

from llmvision.registry import TASK_UTILS
from llmvision.structures.candidates import CandidateSet

from .serializer import SerializedPrompt, _one_line

#: expression word -> the canonical position word written in the box lines (see the module docstring)
POSITION_SYNONYMS: Dict[str, str] = {
    'left': 'left', 'leftmost': 'left', 'right': 'right', 'rightmost': 'right',
    'upper': 'top', 'top': 'top', 'topmost': 'top', 'above': 'top',
    'lower': 'bottom', 'bottom': 'bottom', 'below': 'bottom',
    'larger': 'large', 'big': 'large', 'largest': 'large',
    'smaller': 'small', 'little': 'small', 'smallest': 'small'}


def query_position_words(query: str) -> List[str]:
    """Canonical position words of an expression, in order (``'the leftmost red star'`` -> ``['left']``)."""
    return [POSITION_SYNONYMS[w] for w in str(query).lower().split() if w in POSITION_SYNONYMS]


#: (box xyxy -> value on the axis, (word of the smallest, word of the largest)) for centre x, centre y, area
_POSITION_AXES = ((lambda b: b[0] + b[2], ('left', 'right')), (lambda b: b[1] + b[3], ('top', 'bottom')),
                  (lambda b: (b[2] - b[0]) * (b[3] - b[1]), ('small', 'large')))


def candidate_position_words(boxes: Sequence[Sequence[float]], labels: Sequence[str]) -> List[List[str]]:
    """Per box, its position words among the boxes of the same label (pixel xyxy ``boxes``).

    For each label with two or more boxes: ``left`` for the smallest centre x and ``right`` for the largest,
    ``top`` / ``bottom`` for centre y (image y grows downwards), ``small`` / ``large`` for the area; the first
    box wins a tie. Words come in that axis order (x, y, size). A label with one box gets no words.
    """
    boxes = [[float(v) for v in b] for b in boxes]
    groups = defaultdict(list)
    for i, label in enumerate(labels):
        groups[label].append(i)
    words: List[List[str]] = [[] for _ in boxes]
    for idx in groups.values():
        if len(idx) < 2:
            continue
        for key, (low, high) in _POSITION_AXES:
            values = [key(boxes[i]) for i in idx]
            lo = idx[values.index(min(values))]
            hi = idx[values.index(max(values))]
            words[lo].append(low)
            words[hi].append(high)
    return words


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
        line_format: one box line, with ``{index}``, ``{label}`` and optionally ``{coords}``.
        position_words: write each box's :func:`candidate_position_words` before its label (computed over all
            the prompt's candidates, across blocks).
    """

    def __init__(self, image_size, grid: int = 10, size_grid: int = 20, index_start: int = 0,
                 chat_format: str = '{prompt}\nanswer', lowercase_labels: bool = True,
                 line_format: str = '{coords} {label} {index}', position_words: bool = False):
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
        for key in ('{index}', '{label}'):
            if key not in line_format:
                raise ValueError(f'line_format must contain {key}, got {line_format!r}')
        self.line_format = line_format
        self.position_words = bool(position_words)

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
        lines, index_map, labels, boxes = [' '.join(str(query).split()).lower()], [], [], []
        for bi, block in enumerate(blocks):
            for j in range(len(block)):
                label = ' '.join(_one_line(block.labels[j]).split())
                labels.append(label.lower() if self.lowercase_labels else label)
                boxes.append(block.bboxes[j].tolist())
                index_map.append((bi, j))
        words = candidate_position_words(boxes, [lb.lower() for lb in labels]) if self.position_words \
            else [[] for _ in labels]
        for k, (label, box) in enumerate(zip(labels, boxes)):
            lines.append(self.line_format.format(index=k + self.index_start, label=' '.join(words[k] + [label]),
                                                 coords=self.box_digits(box, h, w)))
        return SerializedPrompt('\n'.join(lines), index_map, self.index_start)

    def chat_text(self, user_text: str, tokenizer=None) -> str:
        """Wrap ``user_text`` with :attr:`chat_format` (no chat template)."""
        return self.chat_format.format(prompt=user_text)
