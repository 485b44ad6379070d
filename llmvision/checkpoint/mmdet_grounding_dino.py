"""mmdet / LLMDet / MM-Grounding-DINO ``.pth`` state dict -> our :class:`GroundingDINO` keys.

mmdet names: ``language_model.language_backbone.body.model.*`` (HF BERT), ``encoder.layers.{i}``
(deformable: ``self_attn``, ``ffn.layers.0.0`` / ``ffn.layers.1``, ``norms.{0,1}``),
``encoder.text_layers.{i}`` (``self_attn.attn.in_proj_*`` packed q/k/v of ``nn.MultiheadAttention``),
``encoder.fusion_layers.{i}`` (same names as ours), ``decoder.layers.{i}`` (``self_attn``,
``cross_attn_text``, ``cross_attn``, ``norms.{0..3}``), ``bbox_head.{cls,reg}_branches.{i}``
(regression ``Sequential`` indices 0/2/4), ``dn_query_generator.label_embedding``.
LLMDet's LLM/captioner parts (``lmm*``, ``connector*``, ``region_connector*``, ``ref_point_head*``,
``image_seperate*``, ...) are returned in ``report.side``, not loaded.
"""
import re
from typing import Dict, Tuple

import torch

from llmvision.models.backbones.convert import (
    MMDET_BACKBONE_PREFIX,
    MMDET_NECK_PREFIX,
    convert_neck_mmdet_to_ours,
    convert_swin_mmdet_to_ours,
)

from .report import ConversionReport

SIDE_PREFIXES = ('lmm', 'connector', 'region_connector', 'ref_point_head', 'image_seperate',
                 'image_separate', 'llm', 'projector')
_SAME = ('text_feat_map.', 'level_embed', 'query_embedding.', 'memory_trans_fc.', 'memory_trans_norm.',
         'dn_query_generator.', 'decoder.ref_point_head.', 'decoder.norm.')
_BERT = 'language_model.language_backbone.body.model.'


def _packed(rest: str, value: torch.Tensor, module: str, ours: str, out: dict) -> bool:
    """``{module}.attn.in_proj_{weight,bias}`` -> q/k/v; ``{module}.attn.out_proj`` -> out_proj."""
    m = re.match(rf'{module}\.attn\.in_proj_(weight|bias)$', rest)
    if m:
        for name, part in zip(('q_proj', 'k_proj', 'v_proj'), value.chunk(3, 0)):
            out[f'{ours}.{name}.{m.group(1)}'] = part
        return True
    m = re.match(rf'{module}\.attn\.out_proj\.(weight|bias)$', rest)
    if m:
        out[f'{ours}.out_proj.{m.group(1)}'] = value
        return True
    return False


def _ffn_norms(rest: str, norm_names) -> str:
    if (m := re.match(r'ffn\.layers\.0\.0\.(weight|bias)$', rest)):
        return f'ffn.fc1.{m.group(1)}'
    if (m := re.match(r'ffn\.layers\.1\.(weight|bias)$', rest)):
        return f'ffn.fc2.{m.group(1)}'
    if (m := re.match(r'norms\.(\d)\.(weight|bias)$', rest)) and int(m.group(1)) < len(norm_names):
        return f'{norm_names[int(m.group(1))]}.{m.group(2)}'
    return None


def convert_mmdet_grounding_dino(state_dict: Dict[str, torch.Tensor]
                                 ) -> Tuple[Dict[str, torch.Tensor], ConversionReport]:
    """mmdet state dict (a checkpoint's ``state_dict``) -> ``(ours, report)``."""
    report, out = ConversionReport(), {}
    sd = {k[len('module.'):] if k.startswith('module.') else k: v for k, v in state_dict.items()}
    backbone = {k: v for k, v in sd.items() if k.startswith(MMDET_BACKBONE_PREFIX)}
    neck = {k: v for k, v in sd.items() if k.startswith(MMDET_NECK_PREFIX)}
    if backbone:
        out.update({'backbone.' + k: v for k, v in convert_swin_mmdet_to_ours(backbone).items()})
    if neck:
        out.update({'neck.' + k: v for k, v in convert_neck_mmdet_to_ours(neck).items()})
    for key, value in sd.items():
        if key.startswith((MMDET_BACKBONE_PREFIX, MMDET_NECK_PREFIX)):
            continue
        if key.startswith(SIDE_PREFIXES):
            report.side[key] = value
            continue
        if key.startswith(_BERT):
            rest = key[len(_BERT):]
            if rest.startswith('pooler.') or rest.endswith('position_ids'):
                continue
            out['text_encoder.bert.' + rest] = value
            continue
        if key.startswith(_SAME) or key == 'level_embed':
            out[key] = value
            continue
        if (m := re.match(r'bbox_head\.cls_branches\.(\d+)\.(bias|log_scale)$', key)):
            out[f'cls_branches.{m.group(1)}.{m.group(2)}'] = value.reshape(1)
            continue
        if (m := re.match(r'bbox_head\.reg_branches\.(\d+)\.([024])\.(weight|bias)$', key)):
            out[f'reg_branches.{m.group(1)}.layers.{int(m.group(2)) // 2}.{m.group(3)}'] = value
            continue
        if (m := re.match(r'encoder\.fusion_layers\.(\d+)\.(.+)$', key)):
            out[key] = value
            continue
        if (m := re.match(r'encoder\.text_layers\.(\d+)\.(.+)$', key)):
            base = f'encoder.text_layers.{m.group(1)}'
            if _packed(m.group(2), value, 'self_attn', f'{base}.self_attn', out):
                continue
            new = _ffn_norms(m.group(2), ('norm1', 'norm2'))
            if new:
                out[f'{base}.{new}'] = value
                continue
        if (m := re.match(r'encoder\.layers\.(\d+)\.(.+)$', key)):
            base, rest = f'encoder.layers.{m.group(1)}', m.group(2)
            if re.match(r'self_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.', rest):
                out[f'{base}.{rest}'] = value
                continue
            new = _ffn_norms(rest, ('norm1', 'norm2'))
            if new:
                out[f'{base}.{new}'] = value
                continue
        if (m := re.match(r'decoder\.layers\.(\d+)\.(.+)$', key)):
            base, rest = f'decoder.layers.{m.group(1)}', m.group(2)
            if _packed(rest, value, 'self_attn', f'{base}.self_attn', out) or \
                    _packed(rest, value, 'cross_attn_text', f'{base}.cross_attn_text', out):
                continue
            if re.match(r'cross_attn\.(sampling_offsets|attention_weights|value_proj|output_proj)\.', rest):
                out[f'{base}.{rest}'] = value
                continue
            new = _ffn_norms(rest, ('norm1', 'norm2', 'norm3', 'norm4'))
            if new:
                out[f'{base}.{new}'] = value
                continue
        report.unconverted.append(key)
    return out, report
