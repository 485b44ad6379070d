"""Chat-template prompts with a visual placeholder, answer-only labels and length limits.

The chat template is rendered by the shared :class:`llmvision.models.llm.conversation.ConversationEncoder`
(``template='tokenizer'``). The captioner's labels cover the whole rendered assistant turn after the generation
prompt (caption, end-of-turn token and the template's trailing newline), as the LLMDet captioner was trained.
"""
from typing import List, Optional, Sequence, Tuple

import torch

from llmvision.models.llm.conversation import ConversationEncoder
from llmvision.structures.lmm_sample import IGNORE_INDEX

__all__ = ['CaptionPrompt', 'IGNORE_INDEX']
_SENTINEL = '\u2063CAPTION\u2063'


class CaptionPrompt:
    """One fixed instruction (``"Describe the image in detail."``) rendered by the tokenizer's chat template.

    The user turn is ``placeholder + "\\n" + prompt``; the rendered prompt is split at the placeholder into
    ``before_ids`` and ``after_ids`` (token ids, computed once). A training sequence is
    ``before_ids + [pad] * num_visual + after_ids + answer_ids`` where the ``num_visual`` placeholder
    positions get the visual token embeddings and ``answer_ids`` is the assistant turn as the template
    renders it (caption plus end-of-turn tokens). Labels are ``-100`` everywhere except ``answer_ids``.

    Two limits cut the answer (the tighter wins; a cut is reported): ``max_answer_len`` counts the answer alone,
    ``max_sequence_len`` the whole sequence ``before + num_visual + after + answer``, as LLMDet's
    ``lmm_max_token_length`` does (the released code cuts the sequence after the visual tokens are inserted).

    Args:
        tokenizer: a HF tokenizer with a ``chat_template``.
        prompt: the instruction text.
        max_answer_len: longest answer (assistant turn) in tokens, or ``None`` for no answer-only limit.
        placeholder: the text marking where the visual tokens go (must not occur in ``prompt``).
        max_sequence_len: longest whole sequence in tokens, or ``None``; needs ``num_visual``.
        num_visual: visual tokens per sequence (fixed for one prompt), counted by ``max_sequence_len``.
    """

    def __init__(self, tokenizer, prompt: str, max_answer_len: Optional[int], placeholder: str = '<image>',
                 max_sequence_len: Optional[int] = None, num_visual: Optional[int] = None):
        if not getattr(tokenizer, 'chat_template', None):
            raise ValueError(f'tokenizer {type(tokenizer).__name__} ({getattr(tokenizer, "name_or_path", "")!r}) '
                             'has no chat_template; the captioner needs one to build prompts')
        if max_answer_len is not None and max_answer_len < 1:
            raise ValueError(f'max_answer_len must be >= 1 or None, got {max_answer_len}')
        if max_sequence_len is not None and num_visual is None:
            raise ValueError('max_sequence_len needs num_visual (the visual tokens it counts)')
        if placeholder in prompt:
            raise ValueError(f'placeholder {placeholder!r} must not occur in the prompt {prompt!r}')
        self.tokenizer = tokenizer
        self.prompt = prompt
        self.max_answer_len = None if max_answer_len is None else int(max_answer_len)
        self.max_sequence_len = None if max_sequence_len is None else int(max_sequence_len)
        self.num_visual = None if num_visual is None else int(num_visual)
        chat = ConversationEncoder(tokenizer, template='tokenizer', image_token=placeholder)
        user = [{'role': 'user', 'content': f'{placeholder}\n{prompt}'}]
        prefix = chat.render(user, add_generation_prompt=True)
        if prefix.count(placeholder) != 1:
            raise ValueError(f'chat template rendered the placeholder {placeholder!r} '
                             f'{prefix.count(placeholder)} times (expected once): {prefix!r}')
        full = chat.render(user + [{'role': 'assistant', 'content': _SENTINEL}])
        if not full.startswith(prefix) or _SENTINEL not in full[len(prefix):]:
            raise ValueError('chat template: the rendered assistant turn does not extend the generation '
                             f'prompt; prompt={prefix!r} full={full!r}')
        before, after = prefix.split(placeholder)
        self.before_ids = self._encode(before)
        self.after_ids = self._encode(after)
        self.answer_head, self.answer_tail = full[len(prefix):].split(_SENTINEL)
        tail_ids = self._encode(self.answer_tail)
        stops = {tid for tid in (tail_ids[:1] + [tokenizer.eos_token_id]) if tid is not None}
        self.stop_ids: Tuple[int, ...] = tuple(sorted(stops))
        pad = tokenizer.pad_token_id
        self.pad_id = int(pad if pad is not None else (tokenizer.eos_token_id or 0))
        limits = [n for n in (self.max_answer_len,) if n is not None]
        if self.max_sequence_len is not None:
            room = self.max_sequence_len - self.num_prefix_tokens(self.num_visual)
            if room < 1:
                raise ValueError(f'max_sequence_len={self.max_sequence_len} leaves no room for an answer: the '
                                 f'prompt with {self.num_visual} visual tokens is already '
                                 f'{self.num_prefix_tokens(self.num_visual)} tokens ({prompt!r})')
            limits.append(room)
        #: longest answer kept (``None``: no limit)
        self.answer_limit: Optional[int] = min(limits) if limits else None

    def _encode(self, text: str) -> List[int]:
        return list(self.tokenizer(text, add_special_tokens=False)['input_ids']) if text else []

    def encode_answer(self, caption: str) -> Tuple[List[int], bool]:
        """Token ids of the assistant turn for ``caption`` -> ``(ids, truncated)`` (ids cut to ``answer_limit``)."""
        ids = self._encode(self.answer_head + caption + self.answer_tail)
        if self.answer_limit is None:
            return ids, False
        return ids[:self.answer_limit], len(ids) > self.answer_limit

    def num_prefix_tokens(self, num_visual: int) -> int:
        """Length of ``before + visual + after``."""
        return len(self.before_ids) + num_visual + len(self.after_ids)

    def build_batch(self, answers: Sequence[Sequence[int]], num_visual: int,
                    device=None) -> Tuple[torch.Tensor, torch.Tensor, torch.Tensor, int]:
        """Right-padded batch for teacher forcing.

        Args:
            answers: per sequence, answer token ids (may be empty for a generation prompt).
            num_visual: visual tokens per sequence.

        Returns:
            ``input_ids [N, T]`` (visual positions hold ``pad_id``), ``labels [N, T]`` (-100 except answers),
            ``attention_mask [N, T]`` (bool), and ``visual_start`` (index of the first visual position).
        """
        prefix = self.before_ids + [self.pad_id] * num_visual + self.after_ids
        total = len(prefix) + max((len(a) for a in answers), default=0)
        n = len(answers)
        input_ids = torch.full((n, total), self.pad_id, dtype=torch.long)
        labels = torch.full((n, total), IGNORE_INDEX, dtype=torch.long)
        attention_mask = torch.zeros((n, total), dtype=torch.bool)
        prefix_t = torch.tensor(prefix, dtype=torch.long)
        for i, ans in enumerate(answers):
            length = len(prefix) + len(ans)
            input_ids[i, :len(prefix)] = prefix_t
            if ans:
                ans_t = torch.tensor(list(ans), dtype=torch.long)
                input_ids[i, len(prefix):length] = ans_t
                labels[i, len(prefix):length] = ans_t
            attention_mask[i, :length] = True
        return (input_ids.to(device), labels.to(device), attention_mask.to(device), len(self.before_ids))
