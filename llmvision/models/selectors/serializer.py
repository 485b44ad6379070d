"""Candidate boxes + referring expression -> the LLM-wrapper prompt (REFERENCE.md section 5).

Prompt (one line per box, pixels, 1 decimal)::

    You are a helpful AI assistant, capable of understanding spatial information. In an image, there are {N} boxes:
    * In box {i}: '{label}' with xyxy coordinates '[x1, y1, x2, y2]',
    Which box is best matching '{query}' ? Answer with just the index of the best box. No explanation.

With several sources (ensembling) each block is preceded by ``Boxes from {source}:`` and the
indices run on across blocks; :attr:`SerializedPrompt.index_map` maps a global index back to
``(block, box)``. The user message is wrapped with the tokenizer's own chat template.
"""
from dataclasses import dataclass
from typing import List, Sequence, Tuple

from llmvision.registry import TASK_UTILS
from llmvision.structures import xyxy_to_cxcywh, xyxy_to_xywh
from llmvision.structures.candidates import CandidateSet

HEADER = ('You are a helpful AI assistant, capable of understanding spatial information. '
          'In an image, there are {n} boxes:')
BOX_LINE = "* In box {i}: '{label}' with {fmt} coordinates '[{coords}]'{score},"
SOURCE_LINE = 'Boxes from {source}:'
QUESTION = ("Which box is best matching '{query}' ? "
            'Answer with just the index of the best box. No explanation.')
_CONVERT = {'xyxy': lambda b: b, 'xywh': xyxy_to_xywh, 'cxcywh': xyxy_to_cxcywh}


@dataclass
class SerializedPrompt:
    """A serialized prompt and how its box indices map back to the candidate blocks.

    Attributes:
        text: the user message (no chat template).
        index_map: entry ``g`` (global index minus ``index_start``) is ``(block, box)``.
        index_start: the number printed for the first box.
    """
    text: str
    index_map: List[Tuple[int, int]]
    index_start: int = 0

    @property
    def num_boxes(self) -> int:
        return len(self.index_map)

    def lookup(self, index: int) -> Tuple[int, int]:
        """Printed index -> ``(block, box)``; raises ``IndexError`` when out of range."""
        g = index - self.index_start
        if not 0 <= g < len(self.index_map):
            raise IndexError(f'box index {index} not in [{self.index_start}, '
                             f'{self.index_start + len(self.index_map)})')
        return self.index_map[g]

    def global_index(self, block: int, box: int) -> int:
        """``(block, box)`` -> the printed index."""
        return self.index_map.index((block, box)) + self.index_start


def _fmt(v: float, decimals: int) -> str:
    s = f'{float(v):.{decimals}f}'
    return s[1:] if s.startswith('-') and float(s) == 0 else s  # no '-0.0'


@TASK_UTILS.register_module()
class BoxListPromptSerializer:
    """Builds the LLM-wrapper prompt.

    Args:
        box_format: ``'xyxy'`` (default), ``'xywh'`` or ``'cxcywh'`` (all pixels).
        with_scores: append `` with score {s:.2f}`` to boxes whose source has scores.
        index_start: number printed for the first box (0 as in the original).
        label_sources: ``'auto'`` (a ``Boxes from {source}:`` line per block when there are
            several blocks), ``True`` (always) or ``False`` (never).
        decimals: decimals printed per coordinate.
        system_prompt: optional system message for the chat template (``None``: none).
    """

    def __init__(self, box_format: str = 'xyxy', with_scores: bool = False, index_start: int = 0,
                 label_sources='auto', decimals: int = 1, system_prompt=None):
        if box_format not in _CONVERT:
            raise ValueError(f'box_format must be one of {sorted(_CONVERT)}, got {box_format!r}')
        if label_sources not in ('auto', True, False):
            raise ValueError(f"label_sources must be 'auto', True or False, got {label_sources!r}")
        self.box_format = box_format
        self.with_scores = with_scores
        self.index_start = index_start
        self.label_sources = label_sources
        self.decimals = decimals
        self.system_prompt = system_prompt

    def serialize(self, blocks: Sequence[CandidateSet], query: str) -> SerializedPrompt:
        """``blocks`` (one :class:`CandidateSet` per source) + expression -> prompt."""
        if isinstance(blocks, CandidateSet):
            blocks = [blocks]
        n = sum(len(b) for b in blocks)
        lines = [HEADER.format(n=n)]
        show_source = self.label_sources is True or (self.label_sources == 'auto' and len(blocks) > 1)
        index_map = []
        for bi, block in enumerate(blocks):
            if show_source:
                lines.append(SOURCE_LINE.format(source=block.source))
            coords = _CONVERT[self.box_format](block.bboxes)
            for j in range(len(block)):
                score = ''
                if self.with_scores and block.scores is not None:
                    score = f' with score {float(block.scores[j]):.2f}'
                lines.append(BOX_LINE.format(
                    i=len(index_map) + self.index_start, label=_one_line(block.labels[j]),
                    fmt=self.box_format, coords=', '.join(_fmt(v, self.decimals) for v in coords[j]),
                    score=score))
                index_map.append((bi, j))
        lines.append(QUESTION.format(query=_one_line(query)))
        return SerializedPrompt('\n'.join(lines), index_map, self.index_start)

    def chat_text(self, user_text: str, tokenizer) -> str:
        """Wrap ``user_text`` with ``tokenizer``'s chat template (generation prompt added)."""
        if getattr(tokenizer, 'chat_template', None) is None:
            raise ValueError(f'tokenizer {type(tokenizer).__name__} has no chat_template; '
                             'use an instruct/chat tokenizer or set tokenizer.chat_template')
        messages = [] if self.system_prompt is None else [
            dict(role='system', content=self.system_prompt)]
        messages.append(dict(role='user', content=user_text))
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _one_line(s: str) -> str:
    return ' '.join(str(s).split())
