"""Grounding-DINO detector (MM-Grounding-DINO / LLMDet flavour) as an mmengine ``BaseModel``.

Pipeline (REFERENCE.md section 1): Swin + channel mapper -> 4 levels of 256; BERT -> Linear(768,
256); encoder (fusion, text enhancer, deformable); two-stage query selection (top ``num_queries``
encoder tokens by their max text logit, learned content queries); decoder with box refinement;
per-layer contrastive class heads and box MLPs (index ``num_decoder_layers`` = the encoder head).
Inside the model boxes are normalized cxcywh relative to each image's ``img_shape``.
"""
import copy
from typing import Dict, List, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from mmengine.model import BaseModel
from torch import nn

from llmvision.registry import MODELS
from llmvision.structures import normalize_xyxy_to_cxcywh

from ..language import build_prompt, chunk_names, spans_to_positive_map
from ..layers import (
    MLP,
    ContrastiveEmbed,
    GroundingDinoDecoder,
    GroundingDinoEncoder,
    SinePositionalEncoding2D,
    encoder_output_proposals,
    inverse_sigmoid,
)
from .outputs import DetectorOutputs
from .postprocess import predict_instances
from .rec_heuristic import RecHeuristic


def _build(cfg):
    if cfg is None or isinstance(cfg, nn.Module):
        return cfg
    return MODELS.build(cfg)


def _valid_ratio(mask: torch.Tensor) -> torch.Tensor:
    """``mask [B, H, W]`` bool True = padding -> ``[B, 2]`` valid (w, h) fractions."""
    _, h, w = mask.shape
    valid_h = (~mask[:, :, 0]).sum(1).float()
    valid_w = (~mask[:, 0, :]).sum(1).float()
    return torch.stack([valid_w / w, valid_h / h], -1)


@MODELS.register_module()
class GroundingDINO(BaseModel):
    """Open-vocabulary detector. ``forward(inputs [B,3,H,W], data_samples, mode)``.

    Args:
        backbone, neck, text_encoder: configs (or modules) of the image backbone, the channel mapper
            (``num_feature_levels`` outputs of ``embed_dims``) and :class:`BertTextEncoder`.
        encoder, decoder: kwargs of :class:`GroundingDinoEncoder` / :class:`GroundingDinoDecoder`.
        num_queries: decoder queries (900).
        max_text_len: width of the class logits (256).
        contrastive: kwargs of :class:`ContrastiveEmbed` (``log_scale='auto', bias=True``).
        positional_encoding: kwargs of :class:`SinePositionalEncoding2D` (temperature 20).
        dn_cfg: kwargs of the heads' ``CdnQueryGenerator`` (None: no denoising).
        loss_cfg: kwargs of the heads' ``GroundingDINOLoss``.
        test_cfg: ``max_per_img`` (300), ``chunked_size`` (40 names per prompt, <=0 disables),
            ``rec_top1`` (keep only the best box; also per sample via metainfo ``rec=True``),
            ``rec_heuristic`` (None, or kwargs of :class:`RecHeuristic`: LLMDet's first-noun-phrase
            entity and left/right/top/bottom re-scoring for REC samples). A sample's metainfo
            ``rec_heuristic`` (set by a REC dataset's metainfo) takes precedence for that sample.
        freeze_backbone: keep backbone (and neck if ``freeze_neck``) weights fixed.
    """

    def __init__(self, backbone, neck, text_encoder, encoder: Optional[dict] = None,
                 decoder: Optional[dict] = None, embed_dims: int = 256, num_queries: int = 900,
                 num_feature_levels: int = 4, max_text_len: int = 256,
                 contrastive: Optional[dict] = None, positional_encoding: Optional[dict] = None,
                 dn_cfg: Optional[dict] = None, loss_cfg: Optional[dict] = None,
                 test_cfg: Optional[dict] = None, freeze_backbone: bool = False,
                 freeze_neck: bool = False, data_preprocessor=None, init_cfg=None):
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        from ..losses import CdnQueryGenerator, GroundingDINOLoss
        self.embed_dims, self.num_queries = embed_dims, num_queries
        self.num_feature_levels, self.max_text_len = num_feature_levels, max_text_len
        self.backbone = _build(backbone)
        self.neck = _build(neck)
        self.text_encoder = _build(text_encoder)
        self.text_feat_map = nn.Linear(self.text_encoder.hidden_size, embed_dims)
        pe = dict(num_feats=embed_dims // 2, temperature=20)
        pe.update(positional_encoding or {})
        self.positional_encoding = SinePositionalEncoding2D(**pe)
        self.level_embed = nn.Parameter(torch.empty(num_feature_levels, embed_dims))
        enc = dict(embed_dims=embed_dims, num_levels=num_feature_levels)
        enc.update(encoder or {})
        dec = dict(embed_dims=embed_dims, num_levels=num_feature_levels)
        dec.update(decoder or {})
        self.encoder = GroundingDinoEncoder(**enc)
        self.decoder = GroundingDinoDecoder(**dec)
        self.num_decoder_layers = len(self.decoder.layers)
        self.query_embedding = nn.Embedding(num_queries, embed_dims)
        self.memory_trans_fc = nn.Linear(embed_dims, embed_dims)
        self.memory_trans_norm = nn.LayerNorm(embed_dims)
        con = dict(max_text_len=max_text_len)
        con.update(contrastive or {})
        self.cls_branches = nn.ModuleList(ContrastiveEmbed(**con)
                                          for _ in range(self.num_decoder_layers + 1))
        self.reg_branches = nn.ModuleList(MLP(embed_dims, embed_dims, 4, 3)
                                          for _ in range(self.num_decoder_layers + 1))
        self.dn_query_generator = None
        if dn_cfg is not None:
            dn = dict(num_classes=max_text_len, embed_dims=embed_dims,
                      num_matching_queries=num_queries)
            dn.update(dn_cfg)
            self.dn_query_generator = CdnQueryGenerator(**dn)
        self.criterion = GroundingDINOLoss(num_classes=max_text_len, **(loss_cfg or {}))
        self.test_cfg = dict(max_per_img=300, chunked_size=40, rec_top1=False)
        self.test_cfg.update(test_cfg or {})
        self._init_own_weights()
        self.freeze_backbone, self.freeze_neck = freeze_backbone, freeze_neck
        self._freeze()

    # ------------------------------------------------------------------ setup
    @torch.no_grad()
    def _init_own_weights(self):
        """mmdet's init: xavier on encoder/decoder matrices, MSDA's own init, zero last box layer."""
        for coder in (self.encoder, self.decoder):
            for p in coder.parameters():
                if p.dim() > 1:
                    nn.init.xavier_uniform_(p)
        for m in self.modules():
            if m.__class__.__name__ == 'MultiScaleDeformableAttention':
                m.init_weights()
        nn.init.xavier_uniform_(self.memory_trans_fc.weight)
        nn.init.zeros_(self.memory_trans_fc.bias)
        nn.init.xavier_uniform_(self.query_embedding.weight)
        nn.init.normal_(self.level_embed)
        nn.init.xavier_uniform_(self.text_feat_map.weight)
        nn.init.zeros_(self.text_feat_map.bias)
        for reg in self.reg_branches:
            nn.init.zeros_(reg.layers[-1].weight)
            nn.init.zeros_(reg.layers[-1].bias)

    def _freeze(self):
        frozen = ([self.backbone] if self.freeze_backbone else []) + \
                 ([self.neck] if self.freeze_neck else [])
        for m in frozen:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)

    def train(self, mode: bool = True):
        super().train(mode)
        self._freeze()
        return self

    # ------------------------------------------------------------- features
    def extract_feat(self, inputs: torch.Tensor) -> List[torch.Tensor]:
        """``inputs [B, 3, H, W]`` -> ``num_feature_levels`` maps ``[B, C, H_l, W_l]``."""
        feats = self.backbone(inputs)
        feats = list(self.neck(feats)) if self.neck is not None else list(feats)
        if len(feats) != self.num_feature_levels:
            raise ValueError(f'GroundingDINO: the neck gave {len(feats)} levels, expected '
                             f'num_feature_levels={self.num_feature_levels}')
        return feats

    def pre_transformer(self, feats: Sequence[torch.Tensor], pixel_valid: torch.Tensor) -> dict:
        """Flatten levels. ``pixel_valid [B, Hp, Wp]`` bool True = image pixel.

        Returns dict(feat [B, N, C], pos [B, N, C], mask [B, N] True = padding, spatial_shapes
        [L, 2], spatial_shapes_list, level_start_index [L], valid_ratios [B, L, 2]).
        """
        pad = ~pixel_valid
        flat, pos, masks, shapes, ratios = [], [], [], [], []
        for lvl, feat in enumerate(feats):
            b, c, h, w = feat.shape
            m = F.interpolate(pad[None].float(), size=(h, w))[0].bool()
            p = self.positional_encoding(m).to(feat.dtype)
            flat.append(feat.flatten(2).transpose(1, 2))
            pos.append(p.flatten(2).transpose(1, 2) + self.level_embed[lvl].view(1, 1, -1))
            masks.append(m.flatten(1))
            shapes.append((h, w))
            ratios.append(_valid_ratio(m))
        spatial_shapes = torch.as_tensor(shapes, dtype=torch.long, device=feats[0].device)
        level_start = torch.cat((spatial_shapes.new_zeros(1), spatial_shapes.prod(1).cumsum(0)[:-1]))
        return dict(feat=torch.cat(flat, 1), pos=torch.cat(pos, 1), mask=torch.cat(masks, 1),
                    spatial_shapes=spatial_shapes, spatial_shapes_list=shapes,
                    level_start_index=level_start,
                    valid_ratios=torch.stack(ratios, 1).to(feats[0].dtype))

    def forward_text(self, captions: List[str]) -> dict:
        """Captions -> dict(memory_text [B, T, C], text_token_mask [B, T], position_ids [B, T],
        text_self_attention_masks [B, T, T], input_ids [B, T], offsets)."""
        out = self.text_encoder(captions)
        out = dict(out)
        out['memory_text'] = self.text_feat_map(out.pop('embedded'))
        return out

    # ---------------------------------------------------------- transformer
    def forward_transformer(self, img: dict, text: dict, batch_gt: Optional[List[dict]] = None
                            ) -> DetectorOutputs:
        """Encoder, query selection, decoder and heads -> :class:`DetectorOutputs`.

        ``batch_gt`` (training with denoising): per image dict(bboxes [n, 4] normalized cxcywh,
        labels [n]).
        """
        text_mask = text['text_token_mask']
        memory, memory_text = self.encoder(
            img['feat'], img['pos'], img['mask'], img['spatial_shapes'], img['spatial_shapes_list'],
            img['level_start_index'], img['valid_ratios'], text['memory_text'], ~text_mask,
            text['position_ids'], text['text_self_attention_masks'])
        # two-stage query selection
        enc_head = self.num_decoder_layers
        output_memory, proposals = encoder_output_proposals(memory, img['mask'],
                                                            img['spatial_shapes_list'])
        output_memory = self.memory_trans_norm(self.memory_trans_fc(output_memory))
        enc_class = self.cls_branches[enc_head](output_memory, memory_text, text_mask)
        enc_coord_unact = self.reg_branches[enc_head](output_memory) + proposals
        k = min(self.num_queries, enc_class.shape[1])
        topk = torch.topk(enc_class.max(-1)[0], k=k, dim=1)[1]
        topk_score = torch.gather(enc_class, 1, topk[..., None].expand(-1, -1, enc_class.shape[-1]))
        topk_coords_unact = torch.gather(enc_coord_unact, 1, topk[..., None].expand(-1, -1, 4))
        topk_coords = topk_coords_unact.sigmoid()
        topk_coords_unact = topk_coords_unact.detach()
        bsz = memory.shape[0]
        query = self.query_embedding.weight[:k][None].expand(bsz, -1, -1)
        self_attn_mask, dn_meta = None, None
        if batch_gt is not None and self.dn_query_generator is not None and self.training:
            dn_label, dn_bbox, self_attn_mask, dn_meta = self.dn_query_generator(batch_gt)
            query = torch.cat([dn_label, query], 1)
            reference = torch.cat([dn_bbox, topk_coords_unact], 1).sigmoid()
        else:
            reference = topk_coords_unact.sigmoid()
        hidden, references = self.decoder(
            query, memory, img['mask'], self_attn_mask, reference, img['spatial_shapes'],
            img['level_start_index'], img['valid_ratios'], memory_text, ~text_mask,
            reg_branches=self.reg_branches)
        cls_scores, bbox_preds = [], []
        for lid in range(self.num_decoder_layers):
            cls_scores.append(self.cls_branches[lid](hidden[lid], memory_text, text_mask))
            delta = self.reg_branches[lid](hidden[lid])
            bbox_preds.append((delta + inverse_sigmoid(references[lid])).sigmoid())
        return DetectorOutputs(
            all_cls_scores=torch.stack(cls_scores), all_bbox_preds=torch.stack(bbox_preds),
            enc_cls_scores=topk_score, enc_bbox_preds=topk_coords, hidden_states=hidden,
            references=references, memory=memory, memory_text=memory_text, text_token_mask=text_mask,
            enc_outputs_class=enc_class, enc_outputs_coord_unact=enc_coord_unact, topk_indices=topk,
            spatial_shapes=img['spatial_shapes'], valid_ratios=img['valid_ratios'], dn_meta=dn_meta)

    # --------------------------------------------------------------- inputs
    @staticmethod
    def _pixel_valid(inputs: torch.Tensor, data_samples) -> torch.Tensor:
        b, _, hp, wp = inputs.shape
        valid = torch.zeros(b, hp, wp, dtype=torch.bool, device=inputs.device)
        if data_samples is None:
            return valid.fill_(True)
        for i, s in enumerate(data_samples):
            h, w = s.metainfo.get('img_shape', (hp, wp))[:2]
            if h > hp or w > wp:
                raise ValueError(f'data_samples[{i}]: img_shape {(h, w)} is larger than the batch '
                                 f'input {(hp, wp)}')
            valid[i, :h, :w] = True
        return valid

    @staticmethod
    def _prompt_of(sample, index: int, allow_no_phrases: bool = False):
        """``(caption, entity_spans)`` of a sample's prompt.

        ``allow_no_phrases``: a caption with ``tokens_positive == []`` is accepted (no entities), as
        for a training image without objects whose caption names none ("a plain gray background");
        it only supplies negatives. Elsewhere a caption without phrases is an error.
        """
        meta = sample.metainfo
        if 'text' not in meta:
            raise KeyError(f'data_samples[{index}] has no metainfo "text" (a caption or a list of '
                           f'category names); keys: {sorted(meta)}')
        text, spans = meta['text'], meta.get('tokens_positive')
        try:
            if allow_no_phrases and isinstance(text, str) and spans is not None and len(spans) == 0:
                return build_prompt(text)[0], []
            return build_prompt(text, spans)
        except ValueError as e:
            raise ValueError(f'data_samples[{index}] (img_path={meta.get("img_path")}): {e}') from None

    def _entity_maps(self, text: dict, spans_per_image) -> List[torch.Tensor]:
        return [spans_to_positive_map(off, spans, self.max_text_len).to(text['memory_text'].device)
                for off, spans in zip(text['offsets'], spans_per_image)]

    # ----------------------------------------------------------------- modes
    def forward(self, inputs: torch.Tensor, data_samples=None, mode: str = 'tensor'):
        if mode == 'loss':
            return self.loss(inputs, data_samples)
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self._forward_tensor(inputs, data_samples)
        raise ValueError(f"GroundingDINO.forward: mode must be 'loss', 'predict' or 'tensor', got {mode!r}")

    def _forward_tensor(self, inputs, data_samples=None, captions: Optional[List[str]] = None
                        ) -> DetectorOutputs:
        """Raw outputs (with ``input_ids``) for the samples' prompts (or ``captions``)."""
        if captions is None:
            captions = [self._prompt_of(s, i)[0] for i, s in enumerate(data_samples)]
        img = self.pre_transformer(self.extract_feat(inputs), self._pixel_valid(inputs, data_samples))
        text = self.forward_text(captions)
        out = self.forward_transformer(img, text)
        out.input_ids = text['input_ids']
        return out

    def loss(self, inputs: torch.Tensor, data_samples) -> Dict[str, torch.Tensor]:
        """Loss dict of the detector."""
        return self.loss_with_outputs(inputs, data_samples)[0]

    def loss_with_outputs(self, inputs: torch.Tensor, data_samples
                          ) -> Tuple[Dict[str, torch.Tensor], DetectorOutputs]:
        """Loss dict and the step's :class:`DetectorOutputs` (with ``last_layer_assign`` and
        ``gt_labels``) for co-trained heads (the LLM captioner). Nothing is kept on the module."""
        captions, gts = [], []
        for i, s in enumerate(data_samples):
            no_boxes = 'bboxes' not in s.gt_instances or len(s.gt_instances.bboxes) == 0
            caption, spans = self._prompt_of(s, i, allow_no_phrases=no_boxes)
            captions.append(caption)
            gts.append((s, spans))
        img = self.pre_transformer(self.extract_feat(inputs), self._pixel_valid(inputs, data_samples))
        text = self.forward_text(captions)
        entity_maps = self._entity_maps(text, [sp for _, sp in gts])
        batch_gt = []
        for i, ((s, _), emap) in enumerate(zip(gts, entity_maps)):
            inst = s.gt_instances
            labels = inst.labels.long().to(inputs.device) if 'labels' in inst else \
                torch.zeros(0, dtype=torch.long, device=inputs.device)
            bboxes = inst.bboxes.to(inputs.device).float() if 'bboxes' in inst else \
                torch.zeros(0, 4, device=inputs.device)
            if labels.numel() and int(labels.max()) >= emap.shape[0]:
                raise ValueError(f'data_samples[{i}] (img_path={s.metainfo.get("img_path")}): gt '
                                 f'label {int(labels.max())} has no entity in the prompt '
                                 f'({emap.shape[0]} entities)')
            bboxes = normalize_xyxy_to_cxcywh(bboxes.reshape(-1, 4), s.metainfo['img_shape'][:2])
            batch_gt.append(dict(bboxes=bboxes, labels=labels, positive_maps=emap[labels]))
        dn_gt = [dict(bboxes=g['bboxes'], labels=g['labels']) for g in batch_gt]
        out = self.forward_transformer(img, text, dn_gt)
        losses, assign = self.criterion(
            out.all_cls_scores, out.all_bbox_preds, out.enc_cls_scores, out.enc_bbox_preds,
            text['text_token_mask'], batch_gt, out.dn_meta)
        out.last_layer_assign = assign
        out.gt_labels = [g['labels'] for g in batch_gt]
        return losses, out

    @torch.no_grad()
    def predict(self, inputs: torch.Tensor, data_samples):
        """Fill ``pred_instances`` (pixel xyxy in ``ori_shape``, scores, labels) of each sample.

        Category lists longer than ``test_cfg.chunked_size`` are split into prompts of that many
        names; the image features are computed once and the transformer runs once per chunk.
        """
        img = self.pre_transformer(self.extract_feat(inputs), self._pixel_valid(inputs, data_samples))
        chunk = int(self.test_cfg.get('chunked_size', 40) or 0)
        default = RecHeuristic.from_cfg(self.test_cfg.get('rec_heuristic'))
        heuristics = [RecHeuristic.from_cfg(s.metainfo['rec_heuristic']) if 'rec_heuristic' in s.metainfo
                      else default for s in data_samples]
        jobs = []  # per sample: list of (caption, spans, label_offset)
        for i, s in enumerate(data_samples):
            text = s.metainfo.get('text')
            if isinstance(text, (list, tuple)) and chunk > 0 and len(text) > chunk:
                parts, off = [], 0
                for names in chunk_names(text, chunk):
                    caption, spans = build_prompt(names)
                    parts.append((caption, spans, off))
                    off += len(names)
                jobs.append(parts)
            else:
                caption, spans = self._prompt_of(s, i)
                heuristic = heuristics[i]
                if heuristic is not None and heuristic.applies(s.metainfo, self.test_cfg):
                    spans = heuristic.entity_spans(caption, spans)
                jobs.append([(caption, spans, 0)])
        results = [[] for _ in data_samples]
        for c in range(max(len(j) for j in jobs)):
            ids = [i for i, j in enumerate(jobs) if c < len(j)]
            sub = self._index_img(img, ids, len(data_samples))
            text = self.forward_text([jobs[i][c][0] for i in ids])
            maps = self._entity_maps(text, [jobs[i][c][1] for i in ids])
            out = self.forward_transformer(sub, text)
            for row, i in enumerate(ids):
                meta = data_samples[i].metainfo
                top1 = bool(self.test_cfg.get('rec_top1')) or bool(meta.get('rec', False))
                heuristic = heuristics[i]
                rescore = heuristic is not None and heuristic.applies(meta, self.test_cfg)
                pred = predict_instances(
                    out.all_cls_scores[-1, row], out.all_bbox_preds[-1, row], maps[row], meta,
                    int(self.test_cfg.get('max_per_img', 300)), jobs[i][c][2], top1 and not rescore)
                results[i].append(heuristic.rescore(pred, meta, top1) if rescore else pred)
        for s, res in zip(data_samples, results):
            pred = res[0].cat(res) if len(res) > 1 else res[0]
            s.pred_instances = pred
        return data_samples

    @staticmethod
    def _index_img(img: dict, ids: List[int], batch: int) -> dict:
        if len(ids) == batch:
            return img
        idx = torch.as_tensor(ids, device=img['feat'].device)
        sub = copy.copy(img)
        for key in ('feat', 'pos', 'mask', 'valid_ratios'):
            sub[key] = img[key][idx]
        return sub
