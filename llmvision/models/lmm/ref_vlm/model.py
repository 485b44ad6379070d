"""REF-VLM on the LLaVA base: the hidden state at each ``<REF>`` is decoded into a box / keypoints.

Training (``loss``): one LLM pass over the conversation (answer-only next-token loss ``loss_llm``); the
last-layer hidden state at every ``<REF>`` token of the answers goes to the decoder of its unit (read from
the tokens, :mod:`.ref_layout`); each decoder sees only its own unit's ``<REF>`` s, and only the samples that
have any (the others are masked out of it). Targets: ``ref_boxes [n, 4]`` / ``ref_keypoints [n, K, 3]`` of
each data sample, in ``<REF>`` order (normalized to the square model input). Losses:
``loss_llm = w_llm * CE``, ``loss_box = w_box * (L1 x5 + GIoU x2)`` summed over the unit decoders,
``loss_keypoint = w_keypoint * (L1 x2 + OKS x2 + visibility x1)`` (weights from ``loss_weights``).

Prediction (``predict``): deterministic greedy decoding; the answer is parsed (:func:`.grammar.parse_answer`);
the prompt + answer is run once more teacher-forced to read the ``<REF>`` states, which the decoders turn into
boxes / keypoints, mapped back to pixels of the original image (metainfo ``square_frame``). Each data sample
gets ``pred_text``, ``parse_error`` (``None`` when the answer parsed), ``pred_triplets``
(``[{'phrase', 'unit', 'bboxes' [n, 4] pixel xyxy, 'keypoints' [n, K, 3] (x, y, visibility prob)}]``) and
``pred_instances`` (every decoded box, ``scores`` and ``labels`` = index of the phrase in ``class_names`` or
-1, boxes of other phrases dropped when ``class_names`` is set; for keypoint units also ``keypoints``) for the
REC / COCO / OKS metrics.
"""
from typing import Dict, List, Optional, Sequence

import torch
import torch.nn as nn
from mmengine.structures import InstanceData

from llmvision.registry import MODELS
from llmvision.structures.boxes import cxcywh_to_xyxy
from llmvision.structures.square_frame import frame_to_pixels, square_frame
from llmvision.utils.hf_builder import build_object

from ..llava import LLaVAModel, LMMBatch
from .box_decoder import RefBoxDecoder
from .grammar import RefGrammarError, parse_answer
from .ref_layout import ref_layout
from .ref_queries import RefQueries, pad_ref_queries, unpad
from .tokens import add_ref_tokens
from .visual_features import RefVisualFeatures

DEFAULT_LOSS_WEIGHTS = dict(llm=1.0, box=0.5, keypoint=1.0)


@MODELS.register_module()
class REFVLMModel(LLaVAModel):
    """LLaVA + ``<REF>`` decoders (module docstring).

    Args:
        visual_features: :class:`RefVisualFeatures` kwargs (``use_convnext``, ``use_vit``, ``convnext``, ...);
            ``vit_channels`` defaults to the vision encoder's width.
        decoders: ``{unit: decoder config}`` (``dict(type=RefBoxDecoder, ...)``); ``llm_dim`` and
            ``in_channels`` are filled in.
        loss_weights: ``dict(llm=1.0, box=0.5, keypoint=1.0)`` (REF-VLM).
        class_names: optional category names; a phrase equal to one gives its index as the predicted label.
        image_aspect: ``'pad'`` / ``'resize'``: the square frame used when a sample has no ``square_frame``.
        other arguments: :class:`LLaVAModel` (``tokenizer`` is required: the tags are added to it).
    """

    def __init__(self, *args, visual_features: Optional[dict] = None, decoders: Optional[Dict[str, dict]] = None,
                 loss_weights: Optional[dict] = None, class_names: Optional[Sequence[str]] = None,
                 image_aspect: str = 'pad', **kwargs):
        super().__init__(*args, **kwargs)
        if self.tokenizer is None:
            raise ValueError('REFVLMModel needs a tokenizer: the <REF> tags are added to it')
        emb = self.embed_tokens.weight
        trainable = emb.requires_grad
        self.token_ids = add_ref_tokens(self.tokenizer, self.llm)
        for module in (self.embed_tokens, self.lm_head):
            module.weight.requires_grad_(trainable)
        vf = dict(visual_features or {})
        if vf.get('use_vit'):
            vf.setdefault('vit_channels', self.vision_encoder.config.hidden_size)
        self.ref_visual = RefVisualFeatures(**vf)
        decoders = decoders if decoders is not None else dict(box=dict(type=RefBoxDecoder))
        built = {}
        for unit, cfg in decoders.items():
            cfg = dict(cfg)
            cfg.setdefault('llm_dim', self.hidden_size)
            cfg.setdefault('in_channels', self.ref_visual.out_channels)
            built[unit] = build_object(cfg)
        self.ref_decoders = nn.ModuleDict(built)
        self.loss_weights = dict(DEFAULT_LOSS_WEIGHTS, **(loss_weights or {}))
        self.class_names = list(class_names) if class_names is not None else None
        self.image_aspect = image_aspect

    # ------------------------------------------------------------------ batch and features
    def image_features(self, inputs):
        """``(projected [N, V, H], vit [N, V, C] or None)`` of the batch's images (``(None, None)`` without any);
        the ViT tokens are kept only when the decoders use them (the vision encoder runs once)."""
        if inputs is None or inputs.shape[0] == 0:
            return None, None
        if not self.ref_visual.use_vit:
            return self.encode_images(inputs), None
        vit = self.vision_features(inputs)
        return self.projector(vit), vit

    def _merge(self, input_ids, labels, feats, vit, padding_side) -> LMMBatch:
        batch = self.merge_inputs(input_ids, labels, feats, padding_side)
        if vit is not None:
            batch.extra['vit_tokens'] = vit
        return batch

    def prepare_batch(self, inputs, data_samples, padding_side: str = 'right') -> LMMBatch:
        """:meth:`LLaVAModel.prepare_batch`, keeping the ViT tokens in ``batch.extra['vit_tokens']``
        when the decoders use them."""
        feats, vit = self.image_features(inputs)
        return self._merge([ds.input_ids for ds in data_samples],
                           [ds.labels if 'labels' in ds else None for ds in data_samples], feats, vit, padding_side)

    def decoder_maps(self, inputs: torch.Tensor, batch: LMMBatch) -> List[torch.Tensor]:
        """Visual maps ``[N, C_l, H_l, W_l]`` of every image of the batch for the decoders."""
        return self.ref_visual(inputs, batch.extra.get('vit_tokens'))

    @staticmethod
    def first_image_index(batch: LMMBatch) -> List[int]:
        """Row of ``pixel_values`` holding each sample's first image (-1 when it has none)."""
        out, seen = [], 0
        for c in batch.image_counts:
            out.append(seen if c else -1)
            seen += c
        return out

    def collect_queries(self, batch: LMMBatch, hidden: torch.Tensor, data_samples, unit: str,
                        with_targets: bool) -> Optional[RefQueries]:
        """The ``<REF>`` states of ``unit`` over the batch (samples without any are left out), or ``None``."""
        first = self.first_image_index(batch)
        states, groups, index, boxes, kpts = [], [], [], [], []
        k = getattr(self.ref_decoders[unit], 'num_keypoints', 0)
        for b, ds in enumerate(data_samples):
            lay = ref_layout(batch.input_ids[b].tolist(), self.token_ids, self.tokenizer.decode)
            keep = [i for i, u in enumerate(lay.units) if u == unit and lay.groups[i] >= 0]
            if with_targets:
                n_t = ds.ref_boxes.shape[0]
                keep = [i for i in keep if i < n_t]  # a <REF> cut by truncation has no target
            if not keep:
                continue
            if first[b] < 0:
                raise ValueError(f'REFVLMModel: sample {ds.metainfo.get("sample_id")!r} has <REF> tokens but no image')
            pos = torch.as_tensor([lay.positions[i] for i in keep], device=hidden.device)
            states.append(hidden[b, pos])
            groups.append([lay.groups[i] for i in keep])
            index.append(first[b])
            if with_targets:
                sel = torch.as_tensor(keep)
                boxes.append(ds.ref_boxes[sel].to(hidden.device))
                if k:
                    kp = torch.zeros(len(keep), k, 3, device=hidden.device)
                    src = ds.ref_keypoints[sel] if 'ref_keypoints' in ds else kp[:, :0]
                    kp[:, :min(k, src.shape[1])] = src[:, :k].to(hidden.device)
                    kpts.append(kp)
        if not states:
            return None
        return pad_ref_queries(states, groups, index, boxes if with_targets else None,
                               kpts if (with_targets and k) else None)

    # ------------------------------------------------------------------ training
    def loss(self, inputs, data_samples) -> Dict[str, torch.Tensor]:
        batch = self.prepare_batch(inputs, data_samples)
        out = self.run_llm(batch)
        if out.hidden_states.shape[1] != batch.input_ids.shape[1]:
            raise NotImplementedError('REFVLMModel: a compressor that drops positions is not supported')
        w = self.loss_weights
        losses = {'loss_llm': w['llm'] * self.compute_loss(out)['loss'] + self._unused_parameter_guard(batch)}
        maps = self.decoder_maps(inputs, batch) if inputs is not None and inputs.shape[0] else None
        # tensors from the start: a batch without keypoint (or box) queries still logs a tensor loss (mmengine's
        # parse_losses rejects a float)
        loss_box = loss_kpt = out.hidden_states.new_zeros((), dtype=torch.float32)
        for unit, dec in self.ref_decoders.items():
            q = None if maps is None else self.collect_queries(batch, out.hidden_states, data_samples, unit, True)
            if q is None:  # keep every trainable parameter in the graph (DDP)
                loss_box = loss_box + sum(p.sum() for p in dec.parameters() if p.requires_grad) * 0.0
                continue
            terms = dec.loss(dec(q, maps), q)
            loss_box = loss_box + terms['box']
            if 'keypoint' in terms:
                loss_kpt = loss_kpt + terms['keypoint']
            for key, value in terms.items():
                if key not in ('box', 'keypoint'):
                    losses[f'{unit}.{key}'] = value.detach()
        if maps is None:
            loss_box = loss_box + sum(p.sum() for p in self.ref_visual.parameters() if p.requires_grad) * 0.0
        losses['loss_box'] = w['box'] * loss_box
        if any(hasattr(d, 'num_keypoints') for d in self.ref_decoders.values()):
            losses['loss_keypoint'] = w['keypoint'] * loss_kpt
        return losses

    # ------------------------------------------------------------------ prediction
    def _frame(self, ds):
        frame = ds.metainfo.get('square_frame')
        if frame is None:
            shape = ds.metainfo.get('ori_shape')
            if shape is None:
                raise ValueError('REFVLMModel.predict: a data sample needs metainfo square_frame or ori_shape '
                                 '(to return pixel boxes)')
            frame = square_frame(shape, self.image_aspect)
        return frame

    @torch.no_grad()
    def predict(self, inputs, data_samples, **gen_overrides):
        """Greedy answer, parsed triplets and decoded boxes / keypoints per sample (module docstring)."""
        gen_overrides.setdefault('num_beams', 1)
        feats, vit = self.image_features(inputs)
        ids = [ds.input_ids for ds in data_samples]
        rows = self.generate_ids(self._merge(ids, [None] * len(ids), feats, vit, 'left'), **gen_overrides)
        full = [torch.cat([i.cpu(), torch.as_tensor(r, dtype=torch.long)]) for i, r in zip(ids, rows)]
        tf = self._merge(full, [None] * len(full), feats, vit, 'right')  # teacher-forced: states at <REF>
        hidden = self.run_llm(tf).hidden_states
        maps = self.decoder_maps(inputs, tf) if sum(tf.image_counts) else None
        results = {}
        for unit, dec in self.ref_decoders.items():
            q = None if maps is None else self.collect_queries(tf, hidden, data_samples, unit, False)
            if q is not None:
                pred = dec.predictions(dec(q, maps))
                rows_of = dict(zip(q.sample_index.tolist(), range(q.sample_index.numel())))
                results[unit] = (pred, q, rows_of)
        first = self.first_image_index(tf)
        for b, (ds, row) in enumerate(zip(data_samples, rows)):
            text = self.tokenizer.decode(row, skip_special_tokens=True)
            stop = gen_overrides.get('stop_strings', self.stop_strings)
            for s in stop:
                text = text.split(s)[0]
            ds.pred_text = text.strip()
            self._set_predictions(ds, first[b], results)
        return list(data_samples)

    def _set_predictions(self, ds, image_row: int, results) -> None:
        try:
            parsed = parse_answer(ds.pred_text, units=tuple(self.ref_decoders))
            ds.parse_error = None
        except RefGrammarError as e:
            parsed, ds.parse_error = None, str(e)
        triplets, boxes, scores, labels, kpts = [], [], [], [], []
        if parsed is not None and parsed.triplets:
            per_unit = {}
            for unit, (pred, q, rows_of) in results.items():
                if image_row in rows_of:
                    r = rows_of[image_row]
                    per_unit[unit] = {k: unpad(v, q.padding_mask)[r] for k, v in pred.items()}
            for unit in {t.unit for t in parsed.triplets}:
                n_text = sum(t.num_refs for t in parsed.triplets if t.unit == unit)
                n_tok = len(per_unit[unit]['boxes']) if unit in per_unit else 0
                if n_text != n_tok:  # e.g. a tag spelled with ordinary tokens instead of the added one
                    ds.parse_error = f'{n_text} {unit} <REF>s in the text but {n_tok} <REF> tokens'
                    per_unit.pop(unit, None)
            frame = self._frame(ds)
            taken = {u: 0 for u in per_unit}
            for t in parsed.triplets:
                if t.unit not in per_unit:
                    continue
                p, start = per_unit[t.unit], taken[t.unit]
                taken[t.unit] += t.num_refs
                bx = frame_to_pixels(cxcywh_to_xyxy(p['boxes'][start:start + t.num_refs].float()), frame).cpu()
                item = dict(phrase=t.phrase, unit=t.unit, bboxes=bx)
                label = self.class_names.index(t.phrase) if self.class_names and t.phrase in self.class_names else -1
                score = torch.ones(bx.shape[0])
                if 'keypoints' in p:
                    xy = frame_to_pixels(p['keypoints'][start:start + t.num_refs].float().flatten(1), frame)
                    vis = p['visibility'][start:start + t.num_refs].float()
                    item['keypoints'] = torch.cat([xy.unflatten(1, (-1, 2)), vis[..., None]], -1).cpu()
                    kpts.append(item['keypoints'])
                    score = vis.mean(-1).cpu()
                triplets.append(item)
                boxes.append(bx)
                scores.append(score)
                labels.append(torch.full((bx.shape[0],), label, dtype=torch.long))
        ds.pred_triplets = triplets
        inst = InstanceData()
        inst.bboxes = torch.cat(boxes) if boxes else torch.zeros(0, 4)
        inst.scores = torch.cat(scores) if scores else torch.zeros(0)
        inst.labels = torch.cat(labels) if labels else torch.zeros(0, dtype=torch.long)
        if kpts and len(kpts) == len(triplets):
            inst.keypoints = torch.cat(kpts)
        if self.class_names is not None:  # box metrics need a category: phrases outside class_names drop out
            inst = inst[inst.labels >= 0]
        ds.pred_instances = inst
