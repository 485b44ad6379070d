"""HF ``MMGroundingDinoForObjectDetection`` state dict -> our :class:`GroundingDINO` keys.

Backbone (Swin) and neck (``input_proj_vision``) keys go through
:mod:`llmvision.models.backbones.convert`; everything else is renamed here. HF's duplicate views
(``model.decoder.bbox_embed/class_embed`` alias the top-level heads) are dropped.
"""
import re
from typing import Dict, Tuple

import torch

from llmvision.models.backbones.convert import (
    HF_BACKBONE_PREFIX,
    HF_NECK_PREFIX,
    convert_neck_hf_to_ours,
    convert_swin_hf_to_ours,
)

from .report import ConversionReport

_ATTN = {'query': 'q_proj', 'key': 'k_proj', 'value': 'v_proj', 'out_proj': 'out_proj'}
_FUSION = {'vision_param': 'gamma_v', 'text_param': 'gamma_l', 'layer_norm_vision': 'layer_norm_v',
           'layer_norm_text': 'layer_norm_l', 'attn.vision_proj': 'attn.v_proj',
           'attn.text_proj': 'attn.l_proj', 'attn.values_vision_proj': 'attn.values_v_proj',
           'attn.values_text_proj': 'attn.values_l_proj', 'attn.out_vision_proj': 'attn.out_v_proj',
           'attn.out_text_proj': 'attn.out_l_proj'}
_DEFORM = {'self_attn_layer_norm': 'norm1', 'fc1': 'ffn.fc1', 'fc2': 'ffn.fc2',
           'final_layer_norm': 'norm2'}
_TEXT = {'layer_norm_before': 'norm1', 'layer_norm_after': 'norm2', 'fc1': 'ffn.fc1',
         'fc2': 'ffn.fc2'}
_DEC = {'self_attn_layer_norm': 'norm1', 'encoder_attn_text_layer_norm': 'norm2',
        'encoder_attn_layer_norm': 'norm3', 'final_layer_norm': 'norm4', 'fc1': 'ffn.fc1',
        'fc2': 'ffn.fc2'}
_SIMPLE = {'model.level_embed': 'level_embed',
           'model.query_position_embeddings.weight': 'query_embedding.weight'}
_PREFIX = (('model.text_backbone.', 'text_encoder.bert.'), ('model.text_projection.', 'text_feat_map.'),
           ('model.enc_output.', 'memory_trans_fc.'), ('model.enc_output_norm.', 'memory_trans_norm.'),
           ('model.decoder.reference_points_head.', 'decoder.ref_point_head.'),
           ('model.decoder.layer_norm.', 'decoder.norm.'))


def _rename(rest: str, table: dict) -> str:
    for old, new in table.items():
        if rest == old or rest.startswith(old + '.'):
            return new + rest[len(old):]
    return None


def _attn(rest: str, module: str, ours: str) -> str:
    m = re.match(rf'{module}\.(query|key|value|out_proj)\.(weight|bias)$', rest)
    return f'{ours}.{_ATTN[m.group(1)]}.{m.group(2)}' if m else None


def _convert_one(key: str, num_decoder_layers: int) -> str:
    if key in _SIMPLE:
        return _SIMPLE[key]
    for old, new in _PREFIX:
        if key.startswith(old):
            return new + key[len(old):]
    if key == 'model.encoder_output_class_embed.bias':
        return f'cls_branches.{num_decoder_layers}.bias'
    if key.startswith('model.encoder_output_bbox_embed.'):
        return f'reg_branches.{num_decoder_layers}.' + key[len('model.encoder_output_bbox_embed.'):]
    if (m := re.match(r'class_embed\.(\d+)\.bias$', key)):
        return f'cls_branches.{m.group(1)}.bias'
    if (m := re.match(r'bbox_embed\.(\d+)\.(layers\.\d+\.(?:weight|bias))$', key)):
        return f'reg_branches.{m.group(1)}.{m.group(2)}'
    if (m := re.match(r'model\.encoder\.layers\.(\d+)\.(\w+)\.(.+)$', key)):
        i, part, rest = m.groups()
        if part == 'fusion_layer':
            new = _rename(rest, _FUSION)
            return f'encoder.fusion_layers.{i}.{new}' if new else None
        if part == 'text_enhancer_layer':
            new = _attn(rest, 'self_attn', 'self_attn') or _rename(rest, _TEXT)
            return f'encoder.text_layers.{i}.{new}' if new else None
        if part == 'deformable_layer':
            if rest.startswith('self_attn.'):
                return f'encoder.layers.{i}.{rest}'
            new = _rename(rest, _DEFORM)
            return f'encoder.layers.{i}.{new}' if new else None
        return None
    if (m := re.match(r'model\.decoder\.layers\.(\d+)\.(.+)$', key)):
        i, rest = m.groups()
        new = (_attn(rest, 'self_attn', 'self_attn') or _attn(rest, 'encoder_attn_text', 'cross_attn_text')
               or _rename(rest, _DEC))
        if new is None and rest.startswith('encoder_attn.'):
            new = 'cross_attn.' + rest[len('encoder_attn.'):]
        return f'decoder.layers.{i}.{new}' if new else None
    return None


def convert_hf_grounding_dino(state_dict: Dict[str, torch.Tensor], num_decoder_layers: int = None
                              ) -> Tuple[Dict[str, torch.Tensor], ConversionReport]:
    """HF state dict -> ``(ours, report)``; ``report.unconverted`` lists keys no rule placed."""
    if num_decoder_layers is None:
        ids = {int(m.group(1)) for k in state_dict if (m := re.match(r'model\.decoder\.layers\.(\d+)\.', k))}
        num_decoder_layers = max(ids) + 1 if ids else 0
    report = ConversionReport()
    out = {}
    backbone = {k: v for k, v in state_dict.items() if k.startswith(HF_BACKBONE_PREFIX)}
    neck = {k: v for k, v in state_dict.items() if k.startswith(HF_NECK_PREFIX)}
    if backbone:
        out.update({'backbone.' + k: v for k, v in convert_swin_hf_to_ours(backbone).items()})
    if neck:
        # inputs of the neck = levels with a 1x1 conv; extra levels use 3x3 convs
        num_inputs = len({k.split('.')[2] for k, v in neck.items()
                          if k.endswith('0.weight') and v.dim() == 4 and v.shape[-1] == 1})
        out.update({'neck.' + k: v for k, v in convert_neck_hf_to_ours(neck, num_inputs).items()})
    for key, value in state_dict.items():
        if key.startswith((HF_BACKBONE_PREFIX, HF_NECK_PREFIX)):
            continue
        if key.startswith(('model.decoder.bbox_embed.', 'model.decoder.class_embed.')):
            continue  # aliases of the top-level heads
        new = _convert_one(key, num_decoder_layers)
        if new is None:
            report.unconverted.append(key)
            continue
        if new.startswith('cls_branches.') and value.dim() == 0:
            value = value.reshape(1)
        out[new] = value
    return out, report
