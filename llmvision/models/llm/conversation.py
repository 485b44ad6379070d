"""Chat templates and the conversation encoder: LLaVA ``conversations`` -> ``input_ids`` / answer-only ``labels``.

Templates (``ConversationEncoder(template=...)``):

* ``'chatml'`` (Qwen2): ``<|im_start|>system\\n{system}<|im_end|>\\n<|im_start|>user\\n{q}<|im_end|>\\n``
  ``<|im_start|>assistant\\n{a}<|im_end|>\\n``; default system ``You are a helpful assistant.`` (as Qwen2's own
  template), ``system=''`` leaves the system turn out. Generation prompt ``<|im_start|>assistant\\n``.
* ``'vicuna_v1'`` (LLaVA-1.5, ``conv_vicuna_v1``): ``{system} USER: {q} ASSISTANT: {a}</s>USER: ...``; the
  system prompt is :data:`VICUNA_SYSTEM`; generation prompt ``... ASSISTANT:``; a BOS token (if the tokenizer
  has one) starts the sequence, as LLaVA's ``tokenizer(prompt)``.
* ``'tokenizer'``: the tokenizer's own ``chat_template`` (``apply_chat_template``).

Labels (the only place in llmvision that makes them): every token of the assistant turns from the end of the
generation prompt through the end-of-turn string (``<|im_end|>`` / `` {a}</s>``) is supervised, everything else
is ``IGNORE_INDEX``. So a model trained on these labels generates exactly what follows the test-mode prompt.
Each ``<image>`` in the text becomes ONE ``IMAGE_TOKEN_INDEX`` entry (the model expands it).
"""
from dataclasses import dataclass
from typing import Dict, List, Optional, Sequence

from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX

from .tokenizer import load_tokenizer

CHATML_SYSTEM = 'You are a helpful assistant.'
VICUNA_SYSTEM = ('A chat between a curious user and an artificial intelligence assistant. The assistant gives '
                 "helpful, detailed, and polite answers to the user's questions.")
_ROLES = {'human': 'user', 'user': 'user', 'gpt': 'assistant', 'assistant': 'assistant', 'system': 'system'}


def render_chatml(messages: Sequence[Dict], add_generation_prompt: bool = False,
                  system: Optional[str] = None) -> str:
    """Qwen2 chatml text of ``messages`` (``[{'role', 'content'}]``)."""
    system = CHATML_SYSTEM if system is None else system
    out = ''
    if system and (not messages or messages[0]['role'] != 'system'):
        out += f'<|im_start|>system\n{system}<|im_end|>\n'
    for m in messages:
        out += f'<|im_start|>{m["role"]}\n{m["content"]}<|im_end|>\n'
    if add_generation_prompt:
        out += '<|im_start|>assistant\n'
    return out


def render_vicuna_v1(messages: Sequence[Dict], add_generation_prompt: bool = False,
                     system: Optional[str] = None) -> str:
    """LLaVA-1.5 ``conv_vicuna_v1.get_prompt()`` text: ``{system} USER: q ASSISTANT: a</s>USER: ...``."""
    msgs = list(messages)
    if msgs and msgs[0]['role'] == 'system':
        system = msgs.pop(0)['content']
    out = (VICUNA_SYSTEM if system is None else system) + ' '
    for m in msgs:
        if m['role'] == 'user':
            out += f'USER: {m["content"]} '
        else:
            out += f'ASSISTANT: {m["content"]}</s>'
    if add_generation_prompt:
        out += 'ASSISTANT:'
    return out


@dataclass
class EncodedConversation:
    """One encoded conversation.

    input_ids / labels: ``[T]`` lists of ints (``labels`` all ``IGNORE_INDEX`` in test mode).
    truncated: the sequence was longer than ``max_length`` (train: cut; test: kept whole, flagged).
    num_images: ``IMAGE_TOKEN_INDEX`` entries in ``input_ids``.
    gt_answer: test mode: the last assistant answer (``None`` when the conversation ends with a user turn).
    """
    input_ids: List[int]
    labels: List[int]
    truncated: bool
    num_images: int
    gt_answer: Optional[str] = None


class ConversationEncoder:
    """Turn LLaVA ``conversations`` into ``input_ids`` / answer-only ``labels`` with a chat template.

    Args:
        tokenizer: tokenizer object, local folder or ``dict(type=...)`` (:func:`.tokenizer.load_tokenizer`).
        template: ``'chatml'``, ``'vicuna_v1'`` or ``'tokenizer'`` (see the module docstring).
        max_length: longest sequence; each image counts ``image_length`` tokens.
        image_token: the placeholder text marking an image's place (``'<image>'``).
        system: system prompt (``None``: the template's default; ``''``: none for chatml).
        image_length: tokens an image occupies after the model expands it (for ``max_length`` only).
    """

    TEMPLATES = ('chatml', 'vicuna_v1', 'tokenizer')

    def __init__(self, tokenizer, template: str = 'chatml', max_length: int = 2048, image_token: str = '<image>',
                 system: Optional[str] = None, image_length: int = 1):
        if template not in self.TEMPLATES:
            raise ValueError(f'unknown chat template {template!r}; choose one of {self.TEMPLATES}')
        if int(max_length) < 1 or int(image_length) < 1:
            raise ValueError(f'max_length={max_length} and image_length={image_length} must be >= 1')
        self.tokenizer = load_tokenizer(tokenizer)
        self.template = template
        self.max_length = int(max_length)
        self.image_token = image_token
        self.system = system
        self.image_length = int(image_length)
        if template == 'tokenizer' and not getattr(self.tokenizer, 'chat_template', None):
            raise ValueError('template="tokenizer" but the tokenizer has no chat_template; use "chatml" or '
                             '"vicuna_v1"')
        bos = getattr(self.tokenizer, 'bos_token_id', None)
        self.prefix_ids: List[int] = [bos] if template == 'vicuna_v1' and bos is not None else []

    # ------------------------------------------------------------------ rendering
    @property
    def stop_strings(self) -> List[str]:
        """Strings that end an assistant turn (generation stops there)."""
        if self.template == 'chatml':
            return ['<|im_end|>']
        if self.template == 'vicuna_v1':
            return ['</s>']
        return [self.tokenizer.eos_token] if self.tokenizer.eos_token else []

    def render(self, messages: Sequence[Dict], add_generation_prompt: bool = False) -> str:
        """The templated text of ``messages`` (``[{'role': 'user'|'assistant'|'system', 'content'}]``)."""
        if self.template == 'chatml':
            return render_chatml(messages, add_generation_prompt, self.system)
        if self.template == 'vicuna_v1':
            return render_vicuna_v1(messages, add_generation_prompt, self.system)
        msgs = list(messages)
        if self.system is not None and (not msgs or msgs[0]['role'] != 'system'):
            msgs = [{'role': 'system', 'content': self.system}] + msgs
        return self.tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=add_generation_prompt)

    @staticmethod
    def to_messages(conversations: Sequence[Dict]) -> List[Dict]:
        """LLaVA turns (``from``/``value``) or chat messages (``role``/``content``) -> checked messages.

        Raises ``ValueError`` naming the turn: unknown role, non-string or empty text, a system turn that is
        not first, user / assistant turns not alternating from a user turn.
        """
        msgs: List[Dict] = []
        for i, turn in enumerate(conversations):
            role = turn.get('from', turn.get('role')) if isinstance(turn, dict) else None
            text = turn.get('value', turn.get('content')) if isinstance(turn, dict) else None
            if role not in _ROLES:
                raise ValueError(f'turn {i}: unknown role {role!r} (expected one of {sorted(_ROLES)})')
            if not isinstance(text, str):
                raise ValueError(f'turn {i}: text must be a string, got {type(text).__name__}')
            role = _ROLES[role]
            if role == 'system' and i != 0:
                raise ValueError(f'turn {i}: a system turn may only come first')
            if role == 'assistant' and not text.strip():
                raise ValueError(f'turn {i}: empty answer')
            msgs.append({'role': role, 'content': text})
        body = msgs[1:] if msgs and msgs[0]['role'] == 'system' else msgs
        for j, m in enumerate(body):
            want = 'user' if j % 2 == 0 else 'assistant'
            if m['role'] != want:
                raise ValueError(f'turn {j + len(msgs) - len(body)}: roles not alternating (expected {want}, '
                                 f'got {m["role"]}; conversations start with a user turn)')
        if not body:
            raise ValueError('conversation has no user turn')
        return msgs

    # ------------------------------------------------------------------ tokenising
    def _tokenize(self, text: str):
        """ids and global character offsets of ``text``; each image placeholder -> IMAGE_TOKEN_INDEX."""
        ids, starts = list(self.prefix_ids), [-1] * len(self.prefix_ids)
        pos = 0
        for k, chunk in enumerate(text.split(self.image_token)):
            if k:
                ids.append(IMAGE_TOKEN_INDEX)
                starts.append(pos - len(self.image_token))
            if chunk:
                enc = self.tokenizer(chunk, add_special_tokens=False, return_offsets_mapping=True)
                ids += enc['input_ids']
                starts += [pos + s for s, _ in enc['offset_mapping']]
            pos += len(chunk) + len(self.image_token)
        return ids, starts

    def _answer_spans(self, msgs: List[Dict]) -> List[tuple]:
        """Character spans ``[start, end)`` of each assistant turn (generation-prompt end -> end of turn)."""
        spans = []
        for i, m in enumerate(msgs):
            if m['role'] != 'assistant':
                continue
            before = self.render(msgs[:i], add_generation_prompt=True)
            upto = self.render(msgs[:i + 1])
            if not upto.startswith(before):
                raise ValueError(f'chat template {self.template!r}: the generation prompt is not a prefix of the '
                                 'rendered answer turn; answer-only labels cannot be placed')
            spans.append((len(before), len(upto.rstrip())))
        return spans

    def encode(self, conversations: Sequence[Dict], test_mode: bool = False) -> EncodedConversation:
        """Encode one conversation.

        Train mode: the whole conversation; labels on assistant turns (answer + end-of-turn), cut at
        ``max_length`` (``truncated=True``; an image that would be cut raises ``ValueError``).
        Test mode: the prompt up to the last assistant turn's generation prompt; labels all ignored;
        ``gt_answer`` is that turn's text (a conversation ending with a user turn gives ``gt_answer=None``).
        """
        msgs = self.to_messages(conversations)
        if test_mode:
            gt = None
            if msgs[-1]['role'] == 'assistant':
                gt = msgs.pop()['content']
            ids, _ = self._tokenize(self.render(msgs, add_generation_prompt=True))
            return EncodedConversation(ids, [IGNORE_INDEX] * len(ids), self._length(ids) > self.max_length,
                                       ids.count(IMAGE_TOKEN_INDEX), gt)
        if msgs[-1]['role'] != 'assistant':
            raise ValueError('training conversation must end with an assistant turn')
        text = self.render(msgs)
        ids, starts = self._tokenize(text)
        spans = self._answer_spans(msgs)
        labels = [t if t != IMAGE_TOKEN_INDEX and any(a <= s < b for a, b in spans) else IGNORE_INDEX
                  for t, s in zip(ids, starts)]
        truncated = self._length(ids) > self.max_length
        if truncated:
            keep, used = 0, 0
            for t in ids:
                used += self.image_length if t == IMAGE_TOKEN_INDEX else 1
                if used > self.max_length:
                    break
                keep += 1
            if IMAGE_TOKEN_INDEX in ids[keep:]:
                raise ValueError(f'conversation of {self._length(ids)} tokens does not fit max_length='
                                 f'{self.max_length}: truncation would cut an image')
            ids, labels = ids[:keep], labels[:keep]
        return EncodedConversation(ids, labels, truncated, ids.count(IMAGE_TOKEN_INDEX))

    def _length(self, ids: List[int]) -> int:
        n_img = ids.count(IMAGE_TOKEN_INDEX)
        return len(ids) - n_img + n_img * self.image_length

