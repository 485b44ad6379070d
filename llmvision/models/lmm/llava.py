"""LLaVA-style multimodal LLM: vision encoder -> projector -> visual tokens spliced into a causal LM.

Submodules (checkpoint keys start with these names; ``llmvision/checkpoint`` converters map onto them):

- ``vision_encoder``: a transformers ``CLIPVisionModel`` / ``SiglipVisionModel`` (frozen by default, kept in
  eval mode while frozen); features are the hidden states of ``vision_feature_layer`` (-2), patch tokens only.
- ``projector``: :class:`LLaVAProjector` (``mlp2x_gelu``: ``linear_1``, ``linear_2``).
- ``llm``: a transformers causal LM (``Qwen2ForCausalLM``, ``LlamaForCausalLM``, ...); LoRA through peft is
  injected in place (``llm.model.layers.0.self_attn.q_proj.lora_A.default.weight``), so the base keys keep
  their names apart from the ``base_layer`` level peft adds to adapted linears.
- ``compressor`` (optional, LLaVolta): see :meth:`LLaVAModel.run_llm`.

Data (see :mod:`llmvision.structures.lmm_sample`): ``inputs`` = ``pixel_values [N, 3, S, S]`` from
:class:`LMMDataPreprocessor` (all images of the batch, sample by sample, placeholder order; ``N`` may be 0),
``data_samples`` = list of ``LMMDataSample`` with ``input_ids [T_i]`` (each image placeholder is ONE
``IMAGE_TOKEN_INDEX`` entry) and ``labels [T_i]`` (``IGNORE_INDEX`` except answer tokens).

Public API (the overridable steps; VLoRA, LLaVolta and REF-VLM subclass or plug into these):

- ``vision_features(pixel_values [N, 3, S, S]) -> [N, V, C_vis]``: the chosen layer's patch tokens.
- ``encode_images(pixel_values [N, 3, S, S]) -> [N, V, H]``: ``projector(vision_features(...))``.
- ``prepare_batch(inputs, data_samples, padding_side='right') -> LMMBatch``: encodes the images and calls
  ``merge_inputs``. ``merge_inputs(input_ids list, labels list, image_features [N, V, H] or None,
  padding_side)`` expands every ``IMAGE_TOKEN_INDEX`` in place to its image's ``V`` tokens (in order over the
  batch), embeds the text, pads (right for training, left for generation) and truncates at ``max_length``.
- :class:`LMMBatch` fields: ``inputs_embeds [B, T, H]``, ``attention_mask [B, T]`` (long, 1 = real),
  ``labels [B, T]`` (``IGNORE_INDEX`` on visual, prompt and pad positions; ``None`` when generating),
  ``position_ids [B, T]`` (0.. per row, pads 0), ``visual_mask [B, T]`` (bool), ``image_counts`` (list of
  int per sample), ``input_ids [B, T]`` (text ids; ``IMAGE_TOKEN_INDEX`` on visual positions; pad id on
  pads), ``extra`` (dict for subclasses: e.g. VLoRA's per-sample weights; tensors with a leading batch dim
  are repeated for beam search by :meth:`LMMBatch.repeat_interleave`).
- ``run_llm(batch, past_key_values=None, use_cache=False) -> LLMOutput`` (``hidden_states [B, T', H]``, the
  ``attention_mask`` / ``labels`` / ``position_ids`` that match ``T'``, ``past_key_values``). Without a
  compressor it is one call of the LLM's decoder (``llm.model``) with ``inputs_embeds``, ``attention_mask``,
  ``position_ids``. With ``self.compressor`` set (LLaVolta's ``VisualTokenCompressor``) it returns
  ``self.compressor(llm, inputs_embeds, attention_mask, position_ids, visual_mask, labels=...,
  past_key_values=..., use_cache=...)``: an output with the same fields whose labels / mask / positions are
  those of the surviving positions. The same ``run_llm`` runs every decoding step of ``predict`` (a step's
  batch has ``T = 1``, no labels and an all-False ``visual_mask``), so wrapping it (VLoRA's context) covers
  generation too.
- ``compute_loss(output: LLMOutput) -> dict``: chunked cross-entropy over the answer positions
  (:func:`llmvision.models.llm.loss.causal_lm_loss`), never the full ``[B, T, vocab]`` logits.
- ``generate_ids(batch, **overrides) -> list of token-id lists`` (greedy / beam with KV cache, through
  ``run_llm``), ``predict`` decodes them into ``pred_text`` (stop strings cut off).
- modes: ``loss`` -> ``{'loss'}``; ``predict`` -> the data samples with ``pred_text``; ``tensor`` ->
  ``dict(logits [B, T, vocab], hidden_states, labels, attention_mask)`` (full logits: small inputs only).

Nothing is stored on the module between calls (DDP / DeepSpeed / FSDP safe); every submodule is called as a
module (ZeRO-3 gathers parameters in module hooks).
"""
from dataclasses import dataclass, field, fields, replace
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.logging import print_log
from mmengine.model import BaseModel

from llmvision.models.llm.generation import StopStrings, generate
from llmvision.models.llm.loss import causal_lm_loss
from llmvision.registry import MODELS
from llmvision.structures.lmm_sample import IGNORE_INDEX, IMAGE_TOKEN_INDEX
from llmvision.utils.hf_builder import build_object

from .data_preprocessor import LMMDataPreprocessor
from .projector import LLaVAProjector
from .vision_tower import (
    check_vision_select,
    resolve_vision_select,
    tower_features,
    vision_hidden_size,
    vision_model_from_config,  # noqa: F401  (re-exported: configs import it from here)
)


@dataclass
class LMMBatch:
    """Model-ready batch after image expansion (shapes in the module docstring)."""
    inputs_embeds: torch.Tensor
    attention_mask: torch.Tensor
    labels: Optional[torch.Tensor]
    position_ids: torch.Tensor
    visual_mask: torch.Tensor
    image_counts: List[int]
    input_ids: Optional[torch.Tensor] = None
    padding_side: str = 'right'
    extra: dict = field(default_factory=dict)

    @property
    def batch_size(self) -> int:
        return self.inputs_embeds.shape[0]

    def repeat_interleave(self, repeats: int) -> 'LMMBatch':
        """Each row repeated ``repeats`` times (beam search); tensors in ``extra`` with the batch dim too."""
        if repeats == 1:
            return self
        b = self.batch_size
        out = {}
        for f in fields(self):
            v = getattr(self, f.name)
            if isinstance(v, torch.Tensor) and v.dim() and v.shape[0] == b:
                v = v.repeat_interleave(repeats, 0)
            out[f.name] = v
        out['image_counts'] = [c for c in self.image_counts for _ in range(repeats)]
        out['extra'] = {k: v.repeat_interleave(repeats, 0) if isinstance(v, torch.Tensor) and v.dim()
                        and v.shape[0] == b else v for k, v in self.extra.items()}
        return LMMBatch(**out)


@dataclass
class LLMOutput:
    """What :meth:`LLaVAModel.run_llm` returns: last hidden states and the per-position data that matches them."""
    hidden_states: torch.Tensor
    attention_mask: torch.Tensor
    labels: Optional[torch.Tensor]
    position_ids: torch.Tensor
    past_key_values: object = None


@MODELS.register_module()
class LLaVAModel(BaseModel):
    """LLaVA: CLIP/SigLIP features of layer -2 -> projector -> in-place ``<image>`` tokens of a causal LM.

    Args:
        vision_encoder: ``dict(type=CLIPVisionModel.from_pretrained, pretrained_model_name_or_path=...)``,
            ``dict(type=vision_model_from_config, config=dict(type=CLIPVisionConfig, ...))`` or a module.
        llm: ``dict(type=AutoModelForCausalLM.from_pretrained, ...)`` / ``causal_lm_from_config`` / a module.
        tokenizer: local folder / builder dict / object; needed by ``predict`` (decoding) only.
        projector: ``'mlp2x_gelu'`` | ``'linear'`` | ``dict(type=LLaVAProjector, kind=...)`` | a module.
            Input / output sizes are filled in from the two models.
        vision_feature_layer: hidden-states index of the vision encoder (-2: the second-to-last layer).
        vision_select: ``'auto'`` (drop the CLS token when the encoder has one: CLIP yes, SigLIP no),
            ``'default'`` (always drop the first token, transformers' ``'default'``) or ``'full'``.
        lora: ``dict(type=LoraConfig, ...)`` / ``LoraConfig`` / ``None``; LoRA adapters are trainable and the
            LLM base is frozen.
        freeze_vision / freeze_projector / freeze_llm: ``requires_grad=False`` on those parameters.
            LLaVA pre-training: ``freeze_llm=True`` (projector only); fine-tuning: ``freeze_llm=False``.
        gradient_checkpointing: activation checkpointing in the LLM (and in the vision encoder if trainable).
        max_length: truncate expanded sequences to this many tokens (``None``: no limit); counted.
        loss_chunk_size: rows of logits per chunk in the loss.
        max_new_tokens / num_beams / length_penalty / stop_strings / eos_token_ids: generation settings;
            ``eos_token_ids=None`` takes the tokenizer's EOS and the LLM generation config's EOS ids.
        compressor: optional module / config called by :meth:`run_llm` (LLaVolta).
        data_preprocessor: default :class:`LMMDataPreprocessor` (CLIP statistics).
    """

    def __init__(self,
                 vision_encoder,
                 llm,
                 tokenizer=None,
                 projector='mlp2x_gelu',
                 vision_feature_layer: int = -2,
                 vision_select: str = 'auto',
                 lora=None,
                 freeze_vision: bool = True,
                 freeze_projector: bool = False,
                 freeze_llm: bool = False,
                 gradient_checkpointing: bool = False,
                 max_length: Optional[int] = None,
                 loss_chunk_size: int = 1024,
                 max_new_tokens: int = 64,
                 num_beams: int = 1,
                 length_penalty: float = 1.0,
                 stop_strings: Sequence[str] = (),
                 eos_token_ids: Optional[Sequence[int]] = None,
                 compressor=None,
                 data_preprocessor=None,
                 init_cfg=None):
        if data_preprocessor is None:
            data_preprocessor = dict(type=LMMDataPreprocessor)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        check_vision_select(vision_select)  # before building the (possibly large) tower and LLM
        self.vision_encoder = _as_module(build_object(vision_encoder), 'vision_encoder')
        llm = _as_module(build_object(llm), 'llm')
        if getattr(llm, 'config', None) is not None:
            llm.config.use_cache = False
        self.tokenizer = _load_tokenizer(tokenizer) if tokenizer is not None else None

        vis_dims = vision_hidden_size(self.vision_encoder)
        llm_dims = llm.get_input_embeddings().weight.shape[1]
        self.hidden_size = llm_dims
        if isinstance(projector, str):
            projector = dict(type=LLaVAProjector, kind=projector)
        if isinstance(projector, dict):
            projector = dict(projector)
            projector.setdefault('in_dims', vis_dims)
            projector.setdefault('out_dims', llm_dims)
            projector = build_object(projector)
        self.projector = _as_module(projector, 'projector')

        if lora is not None:
            from peft import inject_adapter_in_model
            llm = inject_adapter_in_model(build_object(lora), llm)
        self.llm = llm
        self.compressor = build_object(compressor)

        self.vision_feature_layer = int(vision_feature_layer)
        self.vision_select = resolve_vision_select(self.vision_encoder, vision_select)
        self.freeze_vision = freeze_vision
        self.set_trainable(vision=not freeze_vision, projector=not freeze_projector,
                           llm=not freeze_llm and lora is None, lora=lora is not None)
        if gradient_checkpointing:
            kwargs = dict(gradient_checkpointing_kwargs={'use_reentrant': False})
            self.llm.gradient_checkpointing_enable(**kwargs)
            if not freeze_vision and hasattr(self.vision_encoder, 'gradient_checkpointing_enable'):
                self.vision_encoder.gradient_checkpointing_enable(**kwargs)
        self.max_length = max_length
        self.loss_chunk_size = int(loss_chunk_size)
        self.gen_cfg = dict(max_new_tokens=int(max_new_tokens), num_beams=int(num_beams),
                            length_penalty=float(length_penalty))
        self.stop_strings = tuple(stop_strings)
        self.eos_token_ids = None if eos_token_ids is None else [int(t) for t in eos_token_ids]
        self.num_truncated = 0

    # ------------------------------------------------------------------ parameters
    def init_weights(self):
        """Vision encoder and LLM come pretrained (or initialised by their configs); only the projector is
        (re-)initialised by ``init_cfg`` if given. Overridden so mmengine never re-initialises loaded weights."""
        if self.init_cfg:
            super().init_weights()

    def set_trainable(self, vision: bool = False, projector: bool = True, llm: bool = False, lora: bool = True):
        """Set ``requires_grad`` per part: the vision encoder, the projector, the LLM base, LoRA adapters."""
        self.vision_encoder.requires_grad_(vision)
        self.projector.requires_grad_(projector)
        for name, p in self.llm.named_parameters():
            p.requires_grad_(lora if 'lora_' in name else llm)
        self.freeze_vision = not vision

    def train(self, mode: bool = True):
        super().train(mode)
        if self.freeze_vision:
            self.vision_encoder.eval()
        return self

    @property
    def llm_decoder(self) -> nn.Module:
        """The LLM without its head (``Qwen2Model`` / ``LlamaModel``)."""
        return self.llm.get_decoder()

    @property
    def lm_head(self) -> nn.Module:
        return self.llm.get_output_embeddings()

    @property
    def embed_tokens(self) -> nn.Module:
        return self.llm.get_input_embeddings()

    @property
    def pad_token_id(self) -> int:
        tok = self.tokenizer
        for pid in (getattr(tok, 'pad_token_id', None), getattr(tok, 'eos_token_id', None),
                    getattr(getattr(self.llm, 'config', None), 'pad_token_id', None)):
            if pid is not None:
                return int(pid)
        return 0

    # ------------------------------------------------------------------ images
    def vision_features(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``[N, 3, S, S]`` -> ``[N, V, C_vis]``: hidden states of ``vision_feature_layer``, patch tokens only."""
        return tower_features(self.vision_encoder, pixel_values, self.vision_feature_layer, self.vision_select)

    def encode_images(self, pixel_values: torch.Tensor) -> torch.Tensor:
        """``pixel_values [N, 3, S, S]`` -> projected visual tokens ``[N, V, H]``."""
        return self.projector(self.vision_features(pixel_values))

    # ------------------------------------------------------------------ batch
    def prepare_batch(self, inputs: Optional[torch.Tensor], data_samples: Sequence,
                      padding_side: str = 'right') -> LMMBatch:
        """Encode the batch's images and splice them into the token sequences (see :meth:`merge_inputs`)."""
        ids = [ds.input_ids for ds in data_samples]
        labels = [ds.labels if 'labels' in ds else None for ds in data_samples]
        counts = [int((i == IMAGE_TOKEN_INDEX).sum()) for i in ids]
        n_pix = 0 if inputs is None else inputs.shape[0]
        if sum(counts) != n_pix:
            raise ValueError(f'LLaVAModel: the batch has {sum(counts)} image placeholders (per sample {counts}) '
                             f'but {n_pix} images')
        feats = self.encode_images(inputs) if n_pix else None
        return self.merge_inputs(ids, labels, feats, padding_side)

    def merge_inputs(self, input_ids: Sequence[torch.Tensor], labels: Sequence[Optional[torch.Tensor]],
                     image_features: Optional[torch.Tensor], padding_side: str = 'right') -> LMMBatch:
        """Expand each ``IMAGE_TOKEN_INDEX`` in place to its image's tokens, embed the text, pad.

        Args:
            input_ids: B sequences ``[T_i]`` with one ``IMAGE_TOKEN_INDEX`` entry per image.
            labels: B label sequences ``[T_i]`` (entries may be ``None``: all ignored).
            image_features: ``[N, V, H]`` for the N placeholders of the batch in order, or ``None`` if N = 0.
            padding_side: ``'right'`` (training) or ``'left'`` (generation).
        """
        if padding_side not in ('right', 'left'):
            raise ValueError(f"padding_side must be 'right' or 'left', got {padding_side!r}")
        embed = self.embed_tokens
        device = embed.weight.device
        bsz = len(input_ids)
        lens = torch.tensor([len(i) for i in input_ids])
        t_in = int(lens.max()) if bsz else 0
        ids = torch.zeros(bsz, t_in, dtype=torch.long)
        lab = torch.full((bsz, t_in), IGNORE_INDEX, dtype=torch.long)
        for i, (seq, lb) in enumerate(zip(input_ids, labels)):
            ids[i, :len(seq)] = seq.detach().cpu()
            if lb is not None:
                if len(lb) != len(seq):
                    raise ValueError(f'LLaVAModel: sample {i}: labels {len(lb)} and input_ids {len(seq)} differ')
                lab[i, :len(seq)] = lb.detach().cpu()
        valid = torch.arange(t_in)[None] < lens[:, None]
        is_img = (ids == IMAGE_TOKEN_INDEX) & valid
        n_img = int(is_img.sum())
        num_vis = 0 if image_features is None else image_features.shape[1]
        if n_img != (0 if image_features is None else image_features.shape[0]):
            raise ValueError(f'LLaVAModel: {n_img} image placeholders but '
                             f'{0 if image_features is None else image_features.shape[0]} image features')
        width = torch.where(is_img, num_vis, 1) * valid
        start = width.cumsum(1) - width                        # destination of each input token
        new_len = width.sum(1)
        if self.max_length is not None and bool((new_len > self.max_length).any()):
            cut = int((new_len > self.max_length).sum())
            if self.num_truncated == 0:
                print_log(f'LLaVAModel: {cut} sequence(s) longer than max_length={self.max_length} after image '
                          'expansion were truncated (further ones counted in num_truncated)', logger='current')
            self.num_truncated += cut
            new_len = new_len.clamp(max=self.max_length)
        t_out = int(new_len.max()) if bsz else 0
        shift = (t_out - new_len) if padding_side == 'left' else torch.zeros_like(new_len)

        text = valid & ~is_img
        tb, tt = text.nonzero(as_tuple=True)
        t_dst = start[tb, tt]
        keep = t_dst < new_len[tb]
        tb, tt, t_dst = tb[keep], tt[keep], t_dst[keep] + shift[tb[keep]]
        ib, it = is_img.nonzero(as_tuple=True)                 # row-major = the order of image_features
        v_dst = start[ib, it][:, None] + torch.arange(num_vis)[None]        # [N, V]
        v_keep = v_dst < new_len[ib][:, None]
        v_b = ib[:, None].expand_as(v_dst)[v_keep]
        v_dst = v_dst[v_keep] + shift[v_b]

        text_ids = ids[tb, tt].to(device)
        text_emb = embed(text_ids)
        embeds = text_emb.new_zeros(bsz, t_out, text_emb.shape[-1])
        embeds = embeds.index_put((tb.to(device), t_dst.to(device)), text_emb)
        if n_img:
            vis = image_features[v_keep.to(image_features.device)]           # [kept visual tokens, H]
            embeds = embeds.index_put((v_b.to(device), v_dst.to(device)), vis.to(embeds.dtype))
        out_ids = torch.full((bsz, t_out), self.pad_token_id, dtype=torch.long)
        out_ids[tb, t_dst] = ids[tb, tt]
        out_ids[v_b, v_dst] = IMAGE_TOKEN_INDEX
        out_lab = torch.full((bsz, t_out), IGNORE_INDEX, dtype=torch.long)
        out_lab[tb, t_dst] = lab[tb, tt]
        visual = torch.zeros(bsz, t_out, dtype=torch.bool)
        visual[v_b, v_dst] = True
        pos = torch.arange(t_out)[None] - shift[:, None]
        mask = (pos >= 0) & (pos < new_len[:, None])
        pos = pos.clamp(min=0) * mask
        has_labels = any(lb is not None for lb in labels)
        return LMMBatch(inputs_embeds=embeds, attention_mask=mask.long().to(device),
                        labels=out_lab.to(device) if has_labels else None, position_ids=pos.to(device),
                        visual_mask=visual.to(device), image_counts=is_img.sum(1).tolist(),
                        input_ids=out_ids.to(device), padding_side=padding_side)

    # ------------------------------------------------------------------ LLM
    def run_llm(self, batch: LMMBatch, past_key_values=None, use_cache: bool = False) -> LLMOutput:
        """Run the LLM decoder (no head) on ``batch`` -> :class:`LLMOutput` (see the module docstring)."""
        if self.compressor is not None:
            return self.compressor(self.llm, batch.inputs_embeds, batch.attention_mask, batch.position_ids,
                                   batch.visual_mask, labels=batch.labels, past_key_values=past_key_values,
                                   use_cache=use_cache)
        out = self.llm_decoder(inputs_embeds=batch.inputs_embeds, attention_mask=batch.attention_mask,
                               position_ids=batch.position_ids, past_key_values=past_key_values,
                               use_cache=use_cache)
        return LLMOutput(hidden_states=out.last_hidden_state, attention_mask=batch.attention_mask,
                         labels=batch.labels, position_ids=batch.position_ids,
                         past_key_values=out.past_key_values if use_cache else None)

    def compute_loss(self, output: LLMOutput) -> Dict[str, torch.Tensor]:
        """``{'loss'}``: mean next-token cross-entropy over the supervised positions of ``output.labels``."""
        if output.labels is None:
            raise ValueError('LLaVAModel loss: the data samples carry no labels')
        loss = causal_lm_loss(self.lm_head, output.hidden_states, output.labels, self.loss_chunk_size)
        return {'loss': loss}

    def _unused_parameter_guard(self, batch: LMMBatch) -> torch.Tensor:
        """Zero touching the trainable projector / vision parameters when the batch has no image (DDP needs
        every trainable parameter in the graph on every rank)."""
        if sum(batch.image_counts):
            return 0.0
        params = [p for m in (self.projector, self.vision_encoder) for p in m.parameters() if p.requires_grad]
        return sum(p.sum() for p in params) * 0.0 if params else 0.0

    # ------------------------------------------------------------------ modes
    def forward(self, inputs=None, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            out = self.run_llm(self.prepare_batch(inputs, data_samples))
            return dict(logits=self.lm_head(out.hidden_states), hidden_states=out.hidden_states,
                        labels=out.labels, attention_mask=out.attention_mask)
        raise ValueError(f"LLaVAModel: unknown mode {mode!r} ('loss' | 'predict' | 'tensor')")

    def loss(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        batch = self.prepare_batch(inputs, data_samples)
        losses = self.compute_loss(self.run_llm(batch))
        losses['loss'] = losses['loss'] + self._unused_parameter_guard(batch)
        return losses

    @torch.no_grad()
    def predict(self, inputs, data_samples, **gen_overrides):
        """Generate an answer per sample -> the data samples with ``pred_text`` (str) set."""
        if self.tokenizer is None:
            raise ValueError('LLaVAModel.predict needs a tokenizer (tokenizer=<local folder or config>)')
        batch = self.prepare_batch(inputs, data_samples, padding_side='left')
        rows = self.generate_ids(batch, **gen_overrides)
        stop = StopStrings(self.tokenizer, gen_overrides.get('stop_strings', self.stop_strings))
        for ds, row in zip(data_samples, rows):
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            ds.pred_text = (stop.truncate(text) if stop else text).strip()
        return list(data_samples)

    def default_eos_ids(self) -> List[int]:
        if self.eos_token_ids is not None:
            return list(self.eos_token_ids)
        ids = set()
        for src in (self.tokenizer, getattr(self.llm, 'generation_config', None)):
            eos = getattr(src, 'eos_token_id', None)
            if eos is not None:
                ids.update([eos] if isinstance(eos, int) else eos)
        return sorted(int(i) for i in ids)

    @torch.no_grad()
    def generate_ids(self, batch: LMMBatch, max_new_tokens: Optional[int] = None, num_beams: Optional[int] = None,
                     length_penalty: Optional[float] = None, stop_strings: Optional[Sequence[str]] = None,
                     eos_token_ids: Optional[Sequence[int]] = None) -> List[List[int]]:
        """Greedy / beam decoding after a LEFT-padded ``batch`` -> B lists of new token ids (ending with the
        EOS / stop-string token that ended them). Every step goes through :meth:`run_llm`."""
        if batch.padding_side != 'left':
            raise ValueError("generate_ids needs a left-padded batch (prepare_batch(..., padding_side='left'))")
        cfg = dict(self.gen_cfg)
        cfg.update({k: v for k, v in dict(max_new_tokens=max_new_tokens, num_beams=num_beams,
                                            length_penalty=length_penalty).items() if v is not None})
        stops = self.stop_strings if stop_strings is None else tuple(stop_strings)
        stop_fn = StopStrings(self.tokenizer, stops) if stops else None
        if stop_fn and self.tokenizer is None:
            raise ValueError('stop strings need a tokenizer')
        eos = list(eos_token_ids) if eos_token_ids is not None else self.default_eos_ids()
        out = self.run_llm(batch, use_cache=True)
        logits = self.lm_head(out.hidden_states[:, -1]).float()
        next_pos = out.position_ids.max(dim=1).values + 1
        step_batches = {}

        def step(embeds, mask, pos, past):
            rows = embeds.shape[0]
            if rows not in step_batches:
                base = batch.repeat_interleave(rows // batch.batch_size)
                step_batches[rows] = base
            base = step_batches[rows]
            b = replace(base, inputs_embeds=embeds, attention_mask=mask, position_ids=pos, labels=None,
                        visual_mask=torch.zeros_like(pos, dtype=torch.bool), input_ids=None)
            o = self.run_llm(b, past_key_values=past, use_cache=True)
            return self.lm_head(o.hidden_states[:, -1]).float(), o.past_key_values

        return generate(step, lambda t: self.embed_tokens(t), logits, out.past_key_values, out.attention_mask,
                        next_pos, eos_token_ids=eos, pad_token_id=self.pad_token_id, stop_fn=stop_fn, **cfg)


# ---------------------------------------------------------------------- helpers
def _as_module(obj, name: str) -> nn.Module:
    if not isinstance(obj, nn.Module):
        raise TypeError(f'LLaVAModel: {name} must build an nn.Module, got {type(obj).__name__}')
    return obj


def _load_tokenizer(tokenizer):
    from llmvision.models.llm.tokenizer import load_tokenizer
    return load_tokenizer(tokenizer)
