"""LLM captioner for LLMDet co-training: image-level and region-level caption losses on detector features.

The detector hands over its encoder memory maps and the matched last-layer queries; the captioner turns
them into visual tokens, places them in a chat-template prompt, and trains a frozen causal LM with LoRA
to produce the image's long caption and each region's phrase (cross-entropy on answer tokens only).
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModule

from llmvision.models.llm.generation import generate
from llmvision.models.llm.loss import causal_lm_loss
from llmvision.models.llm.tokenizer import load_tokenizer
from llmvision.registry import MODELS
from llmvision.structures.boxes import cxcywh_to_xyxy
from llmvision.utils.hf_builder import build_object

from .caption_prompt import CaptionPrompt
from .image_tokens import ImageTokenizer
from .projector import VisualProjector, released_projector_state
from .region_cross_attn import CONTEXT_KWARG, RegionCrossAttentionAdapter

COUNTER_KEYS = ('image_caption_missing', 'image_caption_truncated', 'region_caption_truncated',
                'regions_dropped', 'images_without_regions')


@MODELS.register_module()
class LLMCaptioner(BaseModule):
    """Caption generator trained alongside a grounding detector (LLMDet).

    Trainable: both projectors (image / region), the separator token(s), LoRA adapters, and the optional
    region cross-attention adapters. The LLM base weights are frozen (``requires_grad=False``).

    Args:
        llm: an ``nn.Module`` causal LM, or ``dict(type=AutoModelForCausalLM.from_pretrained, ...)`` /
            ``dict(type=AutoModelForCausalLM.from_config, config=...)``.
        tokenizer: local directory, a tokenizer object, or a ``dict(type=..., ...)`` builder config.
        lora: ``dict(type=LoraConfig, r=..., ...)`` or a ``peft.LoraConfig``; ``None`` trains no LoRA.
        feat_dims: detector feature size (256).
        image_token_levels: memory levels used for image tokens (2 = stride 32, 1 = stride 16).
        image_token_sizes: grid side per level (20, 27) -> 1130 tokens.
        image_resize_mode: ``'bilinear'`` (LLMDet) or ``'adaptive_avg'``.
        box_format: coordinates given to the sine position embedding: ``'cxcywh'`` or ``'xyxy'`` (LLMDet's
            released code embeds xyxy).
        max_image_caption_len / max_region_caption_len: longest answer in tokens (longer: cut, counted), or
            ``None`` for no answer-only limit.
        max_image_sequence_len: longest image-caption sequence in tokens, counting EVERYTHING (chat prompt,
            the ``image_tokenizer.num_tokens`` visual tokens and the answer), as the released LLMDet's
            ``lmm_max_token_length`` (1600; 1200 in the only-p5 variant); ``None`` counts the answer only.
        max_region_sequence_len: the same for region captions (one visual token); the released code cuts the
            region sequence at 40 tokens (``input_ids[:, :40]``); ``None`` (default) counts the answer only.
        max_regions: regions captioned per image; a random subset when there are more (counted).
        image_prompt / region_prompt: the instructions.
        image_loss_weight / region_loss_weight: loss weights (0 skips that branch's LLM pass).
        region_cross_attn: ``None`` or a dict for :class:`RegionCrossAttentionAdapter` (e.g.
            ``dict(every=4, embed_dims=256, num_heads=8, num_points=4)``).
        detach_region_boxes: stop gradients into the detector's box predictions (LLMDet does).
        gradient_checkpointing: enable HF gradient checkpointing in the LLM.
        placeholder: text marking the visual tokens' place in the user turn.
        compressor: optional LLaVolta ``VisualTokenCompressor`` config / module: pools the image-level
            caption's visual tokens (each grid and the separator on their own) before LLM layer K; region
            captions and ``generate`` stay uncompressed.
        projector_checkpoint: a pre-aligned projector file loaded into BOTH projectors (image and region) at
            construction, as the released LLMDet loads ``mm_projector2.bin`` (``lmm_connector``) into
            ``connector`` and ``region_connector``; see :meth:`load_pretrained_projector`. ``None``: random init.
        projector_prefix: the key prefix of the projector in that file (released ``lmm_connector_prefix``).
    """

    def __init__(self,
                 llm,
                 tokenizer,
                 lora=None,
                 feat_dims: int = 256,
                 image_token_levels: Sequence[int] = (2, 1),
                 image_token_sizes: Sequence[int] = (20, 27),
                 image_resize_mode: str = 'bilinear',
                 box_format: str = 'cxcywh',
                 max_image_caption_len: Optional[int] = 1600,
                 max_region_caption_len: Optional[int] = 40,
                 max_image_sequence_len: Optional[int] = 1600,
                 max_region_sequence_len: Optional[int] = None,
                 max_regions: int = 16,
                 image_prompt: str = 'Describe the image in detail.',
                 region_prompt: str = 'Describe the region in a phrase.',
                 image_loss_weight: float = 1.0,
                 region_loss_weight: float = 1.0,
                 region_cross_attn: Optional[dict] = None,
                 detach_region_boxes: bool = True,
                 gradient_checkpointing: bool = False,
                 placeholder: str = '<image>',
                 compressor=None,
                 projector_checkpoint: Optional[str] = None,
                 projector_prefix: str = 'mm_projector',
                 init_cfg=None):
        super().__init__(init_cfg=init_cfg)
        self.tokenizer = load_tokenizer(tokenizer)
        llm = build_object(llm)
        if not isinstance(llm, nn.Module):
            raise TypeError(f'llm must build an nn.Module causal LM, got {type(llm).__name__}')
        llm.requires_grad_(False)
        if getattr(llm, 'config', None) is not None:
            llm.config.use_cache = False
        if lora is not None:
            from peft import get_peft_model
            llm = get_peft_model(llm, build_object(lora))
        self.llm = llm
        causal = self.causal_lm
        if gradient_checkpointing:
            causal.gradient_checkpointing_enable(gradient_checkpointing_kwargs={'use_reentrant': False})
        hidden = causal.get_input_embeddings().weight.shape[1]
        self.hidden_size = hidden

        if box_format not in ('cxcywh', 'xyxy'):
            raise ValueError(f"box_format must be 'cxcywh' or 'xyxy', got {box_format!r}")
        self.box_format = box_format
        self.image_tokenizer = ImageTokenizer(feat_dims, hidden, image_token_levels, image_token_sizes,
                                              image_resize_mode, box_format)
        self.region_projector = VisualProjector(feat_dims, hidden)
        if projector_checkpoint is not None:
            self.load_pretrained_projector(projector_checkpoint, projector_prefix)
        self.region_cross_attn = None
        if region_cross_attn is not None:
            num_layers = len(causal.get_decoder().layers)
            xattn_cfg = dict(region_cross_attn)
            eps = getattr(getattr(causal, 'config', None), 'rms_norm_eps', None)
            if eps is not None:
                xattn_cfg.setdefault('rms_norm_eps', eps)     # the LLM's own RMSNorm epsilon
            self.region_cross_attn = RegionCrossAttentionAdapter(
                hidden_size=hidden, num_llm_layers=num_layers, **xattn_cfg)
            self.region_cross_attn.install(causal.get_decoder().layers)

        self.image_prompt = CaptionPrompt(self.tokenizer, image_prompt, max_image_caption_len, placeholder,
                                          max_image_sequence_len, self.image_tokenizer.num_tokens)
        self.region_prompt = CaptionPrompt(self.tokenizer, region_prompt, max_region_caption_len, placeholder,
                                           max_region_sequence_len, 1)
        self.max_regions = int(max_regions)
        self.image_loss_weight = float(image_loss_weight)
        self.region_loss_weight = float(region_loss_weight)
        self.detach_region_boxes = detach_region_boxes
        self.counters: Dict[str, int] = {k: 0 for k in COUNTER_KEYS}
        self.compressor = build_object(compressor)

    def load_pretrained_projector(self, state_dict, prefix: str = 'mm_projector') -> List[str]:
        """Load a pre-aligned projector (a path to ``mm_projector2.bin`` or its state dict) into both projectors.

        Keys are read as :func:`released_projector_state` does. Raises ``ValueError`` naming the keys when a key
        under ``prefix`` fits no layout, a shape differs (the stock LLaVA-OneVision projector maps SigLIP's
        1152-d features, not the detector's 256-d ones: LLMDet's file comes from the authors'
        ``my_llava-onevision-qwen2-0.5b-ov-2``), or nothing is found. Returns the projector keys the file did
        not have (``pos_proj.*`` for a plain LLaVA ``mlp2x_gelu`` file; they keep their initialisation).
        """
        source = state_dict
        if not isinstance(state_dict, dict):
            source = torch.load(state_dict, map_location='cpu', weights_only=True)
        ours, unconverted, _ = released_projector_state(source, prefix)
        if unconverted or not ours:
            raise ValueError(f'projector file: {len(ours)} projector keys under {prefix!r} found; keys that fit '
                             f'no known layout: {unconverted[:10]}; first keys: {list(source)[:5]}')
        own = self.region_projector.state_dict()
        bad = [(k, tuple(v.shape), tuple(own[k].shape)) for k, v in ours.items() if tuple(v.shape) != own[k].shape]
        if bad:
            raise ValueError(f'projector file shapes differ from the projector (key, file, ours): {bad} (the stock '
                             'LLaVA-OneVision projector takes 1152-d SigLIP features; LLMDet needs a 256-d input '
                             'projector such as the released mm_projector2.bin)')
        missing = sorted(set(own) - set(ours))
        for projector in (self.image_tokenizer.projector, self.region_projector):
            projector.load_state_dict(ours, strict=False)
        print_log(f'LLMCaptioner: pre-aligned projector loaded into the image and region projectors '
                  f'({sorted(ours)}; not in the file, left at init: {missing})', logger='current')
        return missing

    # ------------------------------------------------------------------ LLM access
    @property
    def causal_lm(self) -> nn.Module:
        """The HF causal LM (inside the peft wrapper when LoRA is used; LoRA layers are injected in place)."""
        return self.llm.get_base_model() if hasattr(self.llm, 'get_base_model') else self.llm

    @property
    def llm_dtype(self) -> torch.dtype:
        return self.causal_lm.get_input_embeddings().weight.dtype

    def _count(self, key: str, n: int, msg: str):
        if n:
            if self.counters[key] == 0:
                print_log(f'LLMCaptioner: {msg} (first occurrence; further ones are counted in '
                          f'LLMCaptioner.counters[{key!r}] and logged as num_{key})', logger='current')
            self.counters[key] += n

    def _embed_sequences(self, prompt: CaptionPrompt, visual: torch.Tensor,
                         answers: Sequence[Sequence[int]]):
        """Teacher-forcing inputs from ``visual [N, V, H]``.

        Returns ``embeds [N, T, H]`` (LLM dtype), ``labels [N, T]``, ``mask [N, T]`` and ``vstart``.
        """
        num_visual = visual.shape[1]
        input_ids, labels, mask, vstart = prompt.build_batch(answers, num_visual, visual.device)
        text = self.causal_lm.get_input_embeddings()(input_ids)
        embeds = torch.cat((text[:, :vstart], visual.to(text.dtype), text[:, vstart + num_visual:]), dim=1)
        return embeds, labels, mask, vstart

    def _caption_loss(self, prompt: CaptionPrompt, visual: torch.Tensor,
                      answers: Sequence[Sequence[int]], xattn_ctx: Optional[dict] = None) -> torch.Tensor:
        """Mean token cross-entropy of the answers given the visual tokens ``[N, V, H]``."""
        embeds, labels, mask, vstart = self._embed_sequences(prompt, visual, answers)
        causal = self.causal_lm
        if self.compressor is not None and prompt is self.image_prompt:
            sizes = self.image_tokenizer.sizes  # grid, separator, grid, ...: spans pooled on their own
            spans = [n for i, k in enumerate(sizes) for n in ((k * k,) if i == 0 else (1, k * k))]
            out = self.compressor.forward_spans(causal, embeds, mask, vstart, spans, labels=labels)
            hidden, labels = out.hidden_states, out.labels
        else:
            hidden = causal.get_decoder()(inputs_embeds=embeds, attention_mask=mask.long(), use_cache=False,
                                          **self._cross_attn_kwargs(xattn_ctx, vstart)).last_hidden_state
        return causal_lm_loss(causal.get_output_embeddings(), hidden, labels)   # answer rows only, chunked

    def _cross_attn_kwargs(self, ctx: Optional[dict], position: int) -> dict:
        """Extra decoder kwargs carrying the region cross-attention context (empty when unused)."""
        if self.region_cross_attn is None or ctx is None:
            return {}
        return {CONTEXT_KWARG: self.region_cross_attn.build_context(position=position, **ctx)}

    def _zero_loss(self, *tensors) -> torch.Tensor:
        """A zero that still touches every trainable parameter (keeps DDP's graph identical across ranks)."""
        total = sum(p.sum() for p in self.parameters() if p.requires_grad)
        for t in tensors:
            if isinstance(t, torch.Tensor) and t.is_floating_point():
                total = total + t.sum()
        return total * 0.0

    # ------------------------------------------------------------------ inputs
    @staticmethod
    def _check_inputs(memory_levels, region_queries, region_boxes, image_captions, region_phrases):
        batch = memory_levels[0].shape[0]
        for name, seq in (('region_queries', region_queries), ('region_boxes', region_boxes),
                          ('image_captions', image_captions), ('region_phrases', region_phrases)):
            if len(seq) != batch:
                raise ValueError(f'LLMCaptioner.loss: {name} has {len(seq)} entries for a batch of {batch}')
        for i, (q, b, p) in enumerate(zip(region_queries, region_boxes, region_phrases)):
            if q.dim() != 2 or b.dim() != 2 or b.shape[-1] != 4 or len(q) != len(b) or len(q) != len(p):
                raise ValueError(f'LLMCaptioner.loss: image {i}: region_queries {tuple(q.shape)}, region_boxes '
                                 f'{tuple(b.shape)} and {len(p)} region_phrases disagree (want [k,C], [k,4], k)')
            cap = image_captions[i]
            if cap is not None and not isinstance(cap, str):
                raise TypeError(f'LLMCaptioner.loss: image {i}: caption must be str or None, got {type(cap).__name__}')
        return batch

    def _embed_boxes_format(self, boxes: torch.Tensor) -> torch.Tensor:
        return cxcywh_to_xyxy(boxes) if self.box_format == 'xyxy' else boxes

    def _region_tokens(self, region_queries, region_boxes, region_phrases, valid_ratios=None):
        """Select up to ``max_regions`` regions per image and project them.

        Returns ``(regions, num_images_without_regions, num_dropped)`` where ``regions`` is
        ``(tokens [R, 1, H] in the projector dtype, R phrases, image_index [R] long, boxes [R, 4] cxcywh)``,
        or ``None`` when no image has a region.
        """
        feats, boxes, phrases, image_index = [], [], [], []
        no_regions = 0
        dropped = 0
        for i, (q, b, p) in enumerate(zip(region_queries, region_boxes, region_phrases)):
            k = len(q)
            if k == 0:
                no_regions += 1
                continue
            keep = torch.arange(k)
            if k > self.max_regions:
                keep = torch.randperm(k)[:self.max_regions].sort().values
                dropped += k - self.max_regions
            idx = keep.to(q.device)
            feats.append(q[idx])
            boxes.append(b[idx.to(b.device)])
            phrases.extend(str(p[j]) for j in keep.tolist())
            image_index.append(torch.full((len(keep),), i, dtype=torch.long, device=q.device))
        self._count('images_without_regions', no_regions, f'{no_regions} image(s) without regions in a batch')
        self._count('regions_dropped', dropped, f'{dropped} region(s) beyond max_regions={self.max_regions} '
                    'were left out (random subset)')
        if not feats:
            return None, no_regions, dropped
        feats = torch.cat(feats)
        boxes = torch.cat(boxes)
        if self.detach_region_boxes:
            boxes = boxes.detach()
        tokens = self.region_projector(feats, self._embed_boxes_format(boxes))[:, None]
        return (tokens, phrases, torch.cat(image_index), boxes), no_regions, dropped

    # ------------------------------------------------------------------ training
    def loss(self,
             memory_levels: List[torch.Tensor],
             region_queries: List[torch.Tensor],
             region_boxes: List[torch.Tensor],
             image_captions: List[Optional[str]],
             region_phrases: List[List[str]],
             valid_ratios: Optional[torch.Tensor] = None) -> Dict[str, torch.Tensor]:
        """Caption losses for a batch.

        Args:
            memory_levels: encoder memory maps ``[B, C, H_l, W_l]`` (strides 8, 16, 32, 64).
            region_queries: per image ``[k_i, C]`` last-decoder-layer matched query features.
            region_boxes: per image ``[k_i, 4]`` normalized cxcywh predicted boxes of those queries.
            image_captions: per image the long caption, or ``None`` (skipped, counted).
            region_phrases: per image ``k_i`` phrases.
            valid_ratios: optional ``[B, L, 2]`` (w, h) un-padded share of each map.

        Returns:
            ``loss_image_caption`` and ``loss_region_caption`` (weighted scalars) and per-batch counters
            ``num_image_caption_missing``, ``num_image_caption_truncated``, ``num_region_caption_truncated``,
            ``num_regions_dropped``, ``num_images_without_regions`` (float tensors, logged not summed).
        """
        self._check_inputs(memory_levels, region_queries, region_boxes, image_captions, region_phrases)
        device = memory_levels[0].device
        stats = dict.fromkeys(COUNTER_KEYS, 0)
        losses = {}

        # image level
        with_caption = [i for i, c in enumerate(image_captions) if c is not None and c.strip()]
        stats['image_caption_missing'] = len(image_captions) - len(with_caption)
        self._count('image_caption_missing', stats['image_caption_missing'],
                    f'{stats["image_caption_missing"]} image(s) without a caption: image caption loss skipped')
        if with_caption and self.image_loss_weight != 0:
            idx = torch.tensor(with_caption, device=device)
            maps = [m.index_select(0, idx) for m in memory_levels]
            ratios = None if valid_ratios is None else valid_ratios.index_select(0, idx)
            visual = self.image_tokenizer(maps, ratios)
            answers = []
            for i in with_caption:
                ids, cut = self.image_prompt.encode_answer(image_captions[i])
                answers.append(ids)
                stats['image_caption_truncated'] += int(cut)
            self._count('image_caption_truncated', stats['image_caption_truncated'],
                        f'image caption(s) longer than {self.image_prompt.answer_limit} tokens truncated '
                        f'(answer limit {self.image_prompt.max_answer_len}, whole-sequence limit '
                        f'{self.image_prompt.max_sequence_len})')
            loss_image = self._caption_loss(self.image_prompt, visual, answers)
        else:
            loss_image = self._zero_loss(*memory_levels)
        losses['loss_image_caption'] = loss_image * self.image_loss_weight

        # region level
        regions, stats['images_without_regions'], stats['regions_dropped'] = self._region_tokens(
            region_queries, region_boxes, region_phrases)
        if regions is not None and self.region_loss_weight != 0:
            tokens, phrases, image_index, boxes = regions
            answers = []
            for phrase in phrases:
                ids, cut = self.region_prompt.encode_answer(phrase)
                answers.append(ids)
                stats['region_caption_truncated'] += int(cut)
            self._count('region_caption_truncated', stats['region_caption_truncated'],
                        f'region phrase(s) longer than {self.region_prompt.answer_limit} tokens truncated '
                        f'(answer limit {self.region_prompt.max_answer_len}, whole-sequence limit '
                        f'{self.region_prompt.max_sequence_len})')
            ctx = None
            if self.region_cross_attn is not None:
                ctx = dict(memory_levels=memory_levels, image_index=image_index, boxes=boxes,
                           valid_ratios=valid_ratios)
            loss_region = self._caption_loss(self.region_prompt, tokens, answers, ctx)
        else:
            loss_region = self._zero_loss(*region_queries)
        losses['loss_region_caption'] = loss_region * self.region_loss_weight

        for key, value in stats.items():
            losses[f'num_{key}'] = torch.tensor(float(value), device=device)
        return losses

    # ------------------------------------------------------------------ inference
    @torch.no_grad()
    def _greedy(self, prompt: CaptionPrompt, visual: torch.Tensor, max_new_tokens: int,
                xattn_ctx: Optional[dict] = None) -> List[str]:
        """Greedy decoding after the prompt with visual tokens ``[N, V, H]`` -> N strings."""
        n = visual.shape[0]
        embeds, _, mask, vstart = self._embed_sequences(prompt, visual, [[] for _ in range(n)])
        causal = self.causal_lm
        mask = mask.long()
        out = causal(inputs_embeds=embeds, attention_mask=mask, use_cache=True, logits_to_keep=1,
                     **self._cross_attn_kwargs(xattn_ctx, vstart))

        def step(token_embeds, step_mask, positions, past):
            o = causal(inputs_embeds=token_embeds, attention_mask=step_mask, position_ids=positions,
                       past_key_values=past, use_cache=True)
            return o.logits[:, -1], o.past_key_values

        positions = torch.full((n,), embeds.shape[1], dtype=torch.long, device=visual.device)
        rows = generate(step, causal.get_input_embeddings(), out.logits[:, -1], out.past_key_values, mask,
                        positions, max_new_tokens, eos_token_ids=prompt.stop_ids, pad_token_id=prompt.pad_id)
        stops = set(prompt.stop_ids)
        return [self.tokenizer.decode(row[:-1] if row and row[-1] in stops else row,
                                      skip_special_tokens=True).strip() for row in rows]

    @torch.no_grad()
    def generate(self, memory_levels: List[torch.Tensor], valid_ratios: Optional[torch.Tensor] = None,
                 max_new_tokens: int = 128) -> List[str]:
        """Greedy image captions: ``memory_levels`` list of ``[B, C, H_l, W_l]`` -> B strings."""
        was_training = self.training
        self.eval()
        try:
            visual = self.image_tokenizer(memory_levels, valid_ratios)
            return self._greedy(self.image_prompt, visual, max_new_tokens)
        finally:
            self.train(was_training)

    @torch.no_grad()
    def generate_regions(self, memory_levels: List[torch.Tensor], region_queries: List[torch.Tensor],
                         region_boxes: List[torch.Tensor], valid_ratios: Optional[torch.Tensor] = None,
                         max_new_tokens: int = 16) -> List[List[str]]:
        """Greedy region phrases: per image ``[k_i, C]`` queries and ``[k_i, 4]`` cxcywh boxes -> k_i strings.

        Every region is captioned (no ``max_regions`` subsampling).
        """
        was_training = self.training
        self.eval()
        try:
            counts = [len(q) for q in region_queries]
            if sum(counts) == 0:
                return [[] for _ in counts]
            boxes = torch.cat(list(region_boxes))
            tokens = self.region_projector(torch.cat(list(region_queries)), self._embed_boxes_format(boxes))
            ctx = None
            if self.region_cross_attn is not None:
                image_index = torch.repeat_interleave(torch.arange(len(counts), device=boxes.device),
                                                      torch.tensor(counts, device=boxes.device))
                ctx = dict(memory_levels=memory_levels, image_index=image_index, boxes=boxes,
                           valid_ratios=valid_ratios)
            texts = self._greedy(self.region_prompt, tokens[:, None], max_new_tokens, ctx)
            out, start = [], 0
            for k in counts:
                out.append(texts[start:start + k])
                start += k
            return out
        finally:
            self.train(was_training)

