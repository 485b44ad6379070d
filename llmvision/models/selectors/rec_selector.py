"""REC selector (LLM-wrapper): a causal LM (+ LoRA) that picks one candidate box per expression.

Data contract (what :class:`llmvision.datasets.rec.RECSelectorDataset` yields, after
``pseudo_collate``):

- ``inputs``: list of user-message strings (the serialized prompt, no chat template); used by
  ``'loss'``. ``'predict'`` re-serializes from the candidates with this model's serializer so
  the printed indices always match the candidates it maps back to.
- ``data_samples``: list of :class:`DetDataSample` with metainfo ``expression`` (str),
  ``candidates`` (list of :class:`CandidateSet`, one per source, prompt order) and, for
  training, ``answer`` (the printed index as a string).

``'loss'``: cross-entropy on the answer tokens (+ EOS when ``answer_eos``) only (prompt positions -100), right
padding (:func:`llmvision.models.llm.loss.causal_lm_loss`: answer rows only, no full logits).
``'predict'``: batched greedy generation with left padding (:func:`llmvision.models.llm.generation.generate`),
answer parsing, fallback
to the detector's top box; returns DetDataSamples with ``pred_instances.bboxes [K, 4]``
(pixel xyxy, K = 1, or 0 without candidates), ``.scores [K]``, ``.labels [K]`` (0) and metainfo
``raw_answer``, ``chosen_index``, ``chosen_source``, ``selection_status``. Every outcome is
counted in :attr:`RECSelector.stats`.
"""
import logging
from collections import Counter
from typing import Dict, List, Optional, Sequence

import torch
from mmengine.logging import print_log
from mmengine.model import BaseModel
from mmengine.structures import InstanceData

from llmvision.models.llm.generation import generate
from llmvision.models.llm.loss import causal_lm_loss
from llmvision.registry import MODELS
from llmvision.structures import DetDataSample
from llmvision.structures.candidates import CandidateSet
from llmvision.utils.hf_builder import build_object

from .answer_parser import OK, fallback_choice, parse_answer
from .serializer import BoxListPromptSerializer


@MODELS.register_module()
class RECSelector(BaseModel):
    """LLM-wrapper REC selector.

    Args:
        llm: config of a transformers causal LM (``type=AutoModelForCausalLM.from_pretrained``
            with a local path, or ``type=causal_lm_from_config``) or a built module.
        tokenizer: config (``type=AutoTokenizer.from_pretrained``) or a built tokenizer; it must
            have a chat template and an EOS token.
        lora: ``dict(type=LoraConfig, ...)`` / a ``LoraConfig`` / ``None`` (no adapter: the
            zero-shot selector; the LLM is then frozen unless ``freeze_llm=False``).
        serializer: prompt serializer config (default :class:`BoxListPromptSerializer`).
        max_prompt_tokens: token budget of the chat-templated prompt (1024 in the original).
        overlength: at predict time, ``'truncate'`` (keep the longest prefix of the candidate
            list that fits) or ``'fallback'`` (skip the LLM, take the detector's top box).
            In training an over-budget sample is always dropped (counted).
        max_new_tokens: greedy generation length.
        freeze_llm: freeze the base LLM when no LoRA is given.
        answer_eos: end the training target with the tokenizer's EOS token. LLM-wrapper v1.0.0 does
            not (its SFT text is the chat-templated prompt + the index; trl adds no EOS), so the
            real-model configs set ``False`` and rely on the instruct LLM's own end-of-turn to stop
            generation. ``True`` (the default, used by the tiny random-init configs) teaches a model
            without a chat prior to stop after the index, so a greedy answer is not followed by
            more digits that the parser would read as part of the index.
    """

    def __init__(self, llm, tokenizer, lora=None, serializer=None, max_prompt_tokens: int = 1024,
                 overlength: str = 'truncate', max_new_tokens: int = 4, freeze_llm: bool = True,
                 answer_eos: bool = True, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if overlength not in ('truncate', 'fallback'):
            raise ValueError(f"overlength must be 'truncate' or 'fallback', got {overlength!r}")
        self.tokenizer = build_object(tokenizer)
        if getattr(self.tokenizer, 'eos_token_id', None) is None:
            raise ValueError('RECSelector: the tokenizer has no eos_token (it ends generation)')
        self.pad_id = self.tokenizer.pad_token_id
        if self.pad_id is None:
            self.pad_id = self.tokenizer.eos_token_id
        llm = build_object(llm)
        if lora is not None:
            from peft import get_peft_model
            llm = get_peft_model(llm, build_object(lora))
        elif freeze_llm:
            llm.requires_grad_(False)
        self.llm = llm
        self.serializer = build_object(serializer) if serializer is not None \
            else BoxListPromptSerializer()
        if isinstance(self.serializer, dict):
            self.serializer = BoxListPromptSerializer(**self.serializer)
        self.max_prompt_tokens = max_prompt_tokens
        self.overlength = overlength
        self.max_new_tokens = max_new_tokens
        self.answer_eos = bool(answer_eos)
        self.stats: Counter = Counter()

    def init_weights(self):
        """The LLM comes pretrained (or initialised by its own config): nothing to initialise.

        Overridden so mmengine does not call ``PreTrainedModel.init_weights`` on loaded weights.
        """

    # ------------------------------------------------------------------ tokenization
    def _encode(self, text: str) -> List[int]:
        return self.tokenizer(text, add_special_tokens=False)['input_ids']

    def prompt_ids(self, user_text: str) -> List[int]:
        """Token ids of the chat-templated prompt (ends with the assistant generation prompt)."""
        return self._encode(self.serializer.chat_text(user_text, self.tokenizer))

    def answer_ids(self, answer: str) -> List[int]:
        """Token ids of the answer, followed by EOS when ``answer_eos``."""
        return self._encode(answer) + ([self.tokenizer.eos_token_id] if self.answer_eos else [])

    @property
    def causal_lm(self):
        """The transformers causal LM (inside the peft wrapper when LoRA is used; adapters injected in place)."""
        return self.llm.get_base_model() if hasattr(self.llm, 'get_base_model') else self.llm

    @property
    def device(self) -> torch.device:
        return next(self.llm.parameters()).device

    # ------------------------------------------------------------------ forward
    def forward(self, inputs, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(data_samples)
        if mode == 'tensor':
            ids, mask, _ = self._train_batch(inputs, data_samples)
            return self.llm(input_ids=ids, attention_mask=mask).logits
        raise ValueError(f"RECSelector: unknown mode {mode!r} ('loss' | 'predict' | 'tensor')")

    def _train_batch(self, inputs: Sequence[str], data_samples):
        """Right-padded ``input_ids [B, L]``, ``attention_mask [B, L]``, ``labels [B, L]``."""
        seqs, labels = [], []
        for i, text in enumerate(inputs):
            p = self.prompt_ids(text)
            answer = None if data_samples is None else data_samples[i].metainfo.get('answer')
            if answer is None:
                raise KeyError(f'RECSelector loss: data sample {i} has no "answer" metainfo')
            if len(p) > self.max_prompt_tokens:
                self.stats['train_dropped_over_budget'] += 1
                continue
            a = self.answer_ids(str(answer))
            seqs.append(p + a)
            labels.append([-100] * len(p) + a)
        if not seqs:
            return None, None, None
        length = max(len(s) for s in seqs)
        ids = torch.full((len(seqs), length), self.pad_id, dtype=torch.long)
        lab = torch.full((len(seqs), length), -100, dtype=torch.long)
        mask = torch.zeros((len(seqs), length), dtype=torch.long)
        for i, (s, t) in enumerate(zip(seqs, labels)):
            ids[i, :len(s)] = torch.tensor(s)
            lab[i, :len(t)] = torch.tensor(t)
            mask[i, :len(s)] = 1
        dev = self.device
        return ids.to(dev), mask.to(dev), lab.to(dev)

    def loss(self, inputs: Sequence[str], data_samples) -> Dict[str, torch.Tensor]:
        """``{'loss': CE over the answer (+ EOS) tokens}`` (mean over those tokens in the batch)."""
        ids, mask, labels = self._train_batch(inputs, data_samples)
        if ids is None:  # every sample over budget: a zero loss that still has a graph
            zero = sum(p.sum() * 0 for p in self.llm.parameters() if p.requires_grad)
            return {'loss': zero}
        causal = self.causal_lm
        hidden = causal.get_decoder()(input_ids=ids, attention_mask=mask).last_hidden_state
        return {'loss': causal_lm_loss(causal.get_output_embeddings(), hidden, labels)}

    # ------------------------------------------------------------------ predict
    def _fit_budget(self, blocks: List[CandidateSet], expression: str):
        """Serialize; shorten the candidate list until the prompt fits the token budget.

        Returns ``(prompt, blocks_used, ids, status)``; ``ids`` is ``None`` when no LLM call is
        possible (status ``'over_budget'``).
        """
        prompt = self.serializer.serialize(blocks, expression)
        ids = self.prompt_ids(prompt.text)
        if len(ids) <= self.max_prompt_tokens:
            return prompt, blocks, ids, OK
        if self.overlength == 'fallback':
            return prompt, blocks, None, 'over_budget'
        flat = [(bi, j) for bi, b in enumerate(blocks) for j in range(len(b))]
        lo, hi, best = 1, len(flat) - 1, None  # largest prefix length that fits
        while lo <= hi:
            mid = (lo + hi) // 2
            cut = _prefix(blocks, flat[:mid])
            p = self.serializer.serialize(cut, expression)
            pid = self.prompt_ids(p.text)
            if len(pid) <= self.max_prompt_tokens:
                best, lo = (p, cut, pid), mid + 1
            else:
                hi = mid - 1
        if best is None:
            return prompt, blocks, None, 'over_budget'
        return best[0], best[1], best[2], 'truncated'

    @torch.no_grad()
    def generate_answers(self, prompt_ids: List[List[int]]) -> List[str]:
        """Greedy answers for prompts (left padded into one batch) -> decoded new text."""
        if not prompt_ids:
            return []
        length = max(len(p) for p in prompt_ids)
        ids = torch.full((len(prompt_ids), length), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, p in enumerate(prompt_ids):
            ids[i, length - len(p):] = torch.tensor(p)
            mask[i, length - len(p):] = 1
        ids, mask = ids.to(self.device), mask.to(self.device)
        positions = (mask.cumsum(1) - 1).clamp(min=0)
        llm = self.llm
        out = llm(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True, logits_to_keep=1)

        def step(token_embeds, step_mask, step_positions, past):
            o = llm(inputs_embeds=token_embeds, attention_mask=step_mask, position_ids=step_positions,
                    past_key_values=past, use_cache=True)
            return o.logits[:, -1], o.past_key_values

        rows = generate(step, self.causal_lm.get_input_embeddings(), out.logits[:, -1], out.past_key_values, mask,
                        positions[:, -1] + 1, self.max_new_tokens, eos_token_ids=[self.tokenizer.eos_token_id],
                        pad_token_id=self.pad_id)
        return self.tokenizer.batch_decode(rows, skip_special_tokens=True)

    def predict(self, data_samples: Sequence[DetDataSample]) -> List[DetDataSample]:
        """Choose one candidate per sample (see the module docstring for the outputs)."""
        plans, to_run = [], []
        for ds in data_samples:
            blocks = _blocks_of(ds)
            expression = ds.metainfo.get('expression')
            if expression is None:
                raise KeyError('RECSelector predict: data sample has no "expression" metainfo')
            if sum(len(b) for b in blocks) == 0:
                plans.append((None, blocks, 'no_candidates'))
                continue
            prompt, used, ids, status = self._fit_budget(blocks, expression)
            plans.append((prompt, used, status))
            if ids is not None:
                to_run.append((len(plans) - 1, ids))
        answers = dict(zip([i for i, _ in to_run], self.generate_answers([p for _, p in to_run])))
        results = []
        for i, (ds, (prompt, blocks, status)) in enumerate(zip(data_samples, plans)):
            raw = answers.get(i)
            choice, chosen_index = None, None
            if raw is not None:
                idx, parse_status = parse_answer(raw, prompt.num_boxes, prompt.index_start)
                if parse_status == OK:
                    choice, chosen_index = prompt.lookup(idx), idx
                else:
                    status = parse_status
            if choice is None and status != 'no_candidates':
                choice = fallback_choice(blocks)
            self.stats[status] += 1
            results.append(_result(ds, blocks, choice, chosen_index, raw, status))
        return results

    def log_stats(self, logger='current', level=logging.INFO):
        """Log the selection outcome counts (ok / truncated / invalid / out_of_range / ...)."""
        print_log(f'RECSelector outcomes: {dict(self.stats)}', logger=logger, level=level)


def _blocks_of(ds) -> List[CandidateSet]:
    blocks = ds.metainfo.get('candidates')
    if blocks is None:
        raise KeyError('RECSelector: data sample has no "candidates" metainfo '
                       '(list of CandidateSet, one per source)')
    return [blocks] if isinstance(blocks, CandidateSet) else list(blocks)


def _prefix(blocks: List[CandidateSet], keep) -> List[CandidateSet]:
    per_block = [[] for _ in blocks]
    for bi, j in keep:
        per_block[bi].append(j)
    return [b.subset(idx) for b, idx in zip(blocks, per_block)]


def _result(ds, blocks, choice, chosen_index, raw: Optional[str], status: str) -> DetDataSample:
    out = DetDataSample(metainfo=dict(ds.metainfo))
    if 'gt_instances' in ds:
        out.gt_instances = ds.gt_instances
    pred = InstanceData()
    if choice is None:
        pred.bboxes = torch.zeros(0, 4)
        pred.scores = torch.zeros(0)
        pred.labels = torch.zeros(0, dtype=torch.long)
        source = None
    else:
        block = blocks[choice[0]]
        pred.bboxes = block.bboxes[choice[1]].reshape(1, 4).clone()
        pred.scores = torch.ones(1) if block.scores is None else block.scores[choice[1]].reshape(1)
        pred.labels = torch.zeros(1, dtype=torch.long)
        source = block.source
    out.pred_instances = pred
    out.set_metainfo(dict(raw_answer=raw, chosen_index=chosen_index, chosen_source=source,
                          chosen=choice, selection_status=status))
    return out
