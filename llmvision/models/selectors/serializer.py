"""Candidate boxes + referring expression -> the LLM-wrapper prompt (REFERENCE.md sections 5, 9).

The text is the released code's (LLM-wrapper v1.0.0, prompt versions 31 / 32 and its two-detector
ensembling prompt): see :class:`BoxListPromptSerializer`. :attr:`SerializedPrompt.index_map` maps
a printed index back to ``(block, box)``. The user message is wrapped with the tokenizer's own
chat template, or with a fixed format string such as the released Llama-3 prompt.
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence, Tuple

from llmvision.registry import TASK_UTILS
from llmvision.structures import xyxy_to_cxcywh, xyxy_to_xywh
from llmvision.structures.candidates import CandidateSet

HEADER = 'You are a helpful AI assistant, capable of understanding spatial information.'
COUNT_LINE = 'In an image, there are {n} boxes:'
ENSEMBLE_LINE = 'In an image, I got boxes from two object detectors:'
BOX_LINE = "* In box {i}: '{label}' with {fmt} coordinates '[{coords}]'{score},"
ENSEMBLE_BOX_LINE = "* Box {i}: {source} found '{label}' with {fmt} coordinates '[{coords}]'{score},"
QUESTION = ("Which box is best matching '{query}' ? "
            'Answer with just the index of the best box. No explanation.')
# The released code writes its Llama-3 prompt by hand: no blank line after the role headers
# (the tokenizer's own template has one). Use it with released Llama-3 LoRA weights.
LLAMA3_RELEASED_CHAT = ('<|begin_of_text|><|start_header_id|>user<|end_header_id|>{prompt}'
                        '<|eot_id|><|start_header_id|>assistant<|end_header_id|>')
# Display names the released ensembling prompt uses for its two detectors.
RELEASED_SOURCE_NAMES = {'florence2': 'Florence-2', 'florence-2': 'Florence-2',
                         'grounding_dino': 'Grounding DINO', 'gdino': 'Grounding DINO'}
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


def _number(v: float, decimals: int) -> str:
    """``round(v, decimals)`` printed as Python prints it (``45.0``, ``0.2``), as the released
    prompt shows a list of rounded floats."""
    return repr(round(float(v), decimals))


@TASK_UTILS.register_module()
class BoxListPromptSerializer:
    """Builds the LLM-wrapper prompt exactly as the released code (v1.0.0) lays it out.

    One source (``prompt_version`` 31, or 32 with scores)::

        You are a helpful AI assistant, capable of understanding spatial information.
        In an image, there are {N} boxes:
        * In box 0: '{label}' with xyxy coordinates '[x1, y1, x2, y2]',
        * In box 1: '{label}' with xyxy coordinates '[x1, y1, x2, y2]'.
        Which box is best matching '{query}' ? Answer with just the index of the best box. No explanation.

    Several sources (ensembling): the second line is ``In an image, I got boxes from two object
    detectors:``, box lines read ``* Box {k}: {source name} found '{label}' with ...``, indices run
    on across the blocks, and each block's last line ends with ``.``.

    Box labels are lower-cased and stripped; coordinates (pixels) are ``round(v, 1)`` printed as a
    Python list; negative ``x1`` / ``y1`` print as ``0.0`` (the released box cleaning); scores are
    ``round(s, 2)``. The released v32 prompt with a single source has a bug (the coordinate part
    is not an f-string, so the literal text ``{args.bbox_format}`` is printed): we print the values.

    Args:
        box_format: ``'xyxy'`` (default), ``'xywh'`` or ``'cxcywh'`` (all pixels).
        with_scores: append `` with score {s}`` to boxes whose source has scores (prompt v32).
        index_start: number printed for the first box (0 as released).
        decimals: decimals of each coordinate (1 as released).
        source_names: display name per source for ensembling (default: the released names of
            Florence-2 and Grounding DINO; other sources print their own name).
        lowercase_labels: lower-case the box labels (released).
        clamp_origin: print ``x1`` / ``y1`` below 0 as 0 (released box cleaning).
        system_prompt: optional system message for the chat template (``None``: none; the
            released prompt has everything in the user turn).
        chat_format: ``'tokenizer'`` (the tokenizer's chat template) or a format string with
            ``{prompt}`` (e.g. :data:`LLAMA3_RELEASED_CHAT`, the released hand-written Llama-3
            prompt).
    """

    def __init__(self, box_format: str = 'xyxy', with_scores: bool = False, index_start: int = 0,
                 decimals: int = 1, source_names: Optional[Dict[str, str]] = None,
                 lowercase_labels: bool = True, clamp_origin: bool = True, system_prompt=None,
                 chat_format: str = 'tokenizer'):
        if box_format not in _CONVERT:
            raise ValueError(f'box_format must be one of {sorted(_CONVERT)}, got {box_format!r}')
        if chat_format != 'tokenizer' and '{prompt}' not in chat_format:
            raise ValueError("chat_format must be 'tokenizer' or a format string containing "
                             f"'{{prompt}}', got {chat_format!r}")
        self.box_format = box_format
        self.with_scores = with_scores
        self.index_start = index_start
        self.decimals = decimals
        self.source_names = dict(RELEASED_SOURCE_NAMES if source_names is None else source_names)
        self.lowercase_labels = lowercase_labels
        self.clamp_origin = clamp_origin
        self.system_prompt = system_prompt
        self.chat_format = chat_format

    def _box_line(self, template: str, index: int, block: CandidateSet, j: int, coords) -> str:
        xy = [float(v) for v in coords[j]]
        if self.clamp_origin and self.box_format != 'cxcywh':
            xy[0], xy[1] = (0.0 if xy[0] <= 0 else xy[0]), (0.0 if xy[1] <= 0 else xy[1])
        label = _one_line(block.labels[j]).strip()
        score = ''
        if self.with_scores and block.scores is not None:
            score = f' with score {_number(block.scores[j], 2)}'
        return template.format(
            i=index, label=label.lower() if self.lowercase_labels else label,
            source=self.source_names.get(block.source, block.source), fmt=self.box_format,
            coords=', '.join(_number(v, self.decimals) for v in xy), score=score)

    def serialize(self, blocks: Sequence[CandidateSet], query: str) -> SerializedPrompt:
        """``blocks`` (one :class:`CandidateSet` per source) + expression -> prompt."""
        if isinstance(blocks, CandidateSet):
            blocks = [blocks]
        ensemble = len(blocks) > 1
        n = sum(len(b) for b in blocks)
        text = HEADER + '\n' + (ENSEMBLE_LINE if ensemble else COUNT_LINE.format(n=n))
        template = ENSEMBLE_BOX_LINE if ensemble else BOX_LINE
        index_map = []
        for bi, block in enumerate(blocks):
            coords = _CONVERT[self.box_format](block.bboxes)
            context = ''
            for j in range(len(block)):
                context += '\n' + self._box_line(template, len(index_map) + self.index_start, block, j, coords)
                index_map.append((bi, j))
            text += context.strip(',') + '.'  # the released code ends each block's list with '.'
        text += '\n' + QUESTION.format(query=' '.join(str(query).splitlines()))
        return SerializedPrompt(text, index_map, self.index_start)

    def chat_text(self, user_text: str, tokenizer) -> str:
        """Wrap ``user_text`` with the chat format (generation prompt added)."""
        if self.chat_format != 'tokenizer':
            return self.chat_format.format(prompt=user_text)
        if getattr(tokenizer, 'chat_template', None) is None:
            raise ValueError(f'tokenizer {type(tokenizer).__name__} has no chat_template; '
                             'use an instruct/chat tokenizer or set tokenizer.chat_template')
        messages = [] if self.system_prompt is None else [
            dict(role='system', content=self.system_prompt)]
        messages.append(dict(role='user', content=user_text))
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)


def _one_line(s: str) -> str:
    return ' '.join(str(s).split())
