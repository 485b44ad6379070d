"""State-dict key converters for the Swin backbone and the channel-mapper neck: HF / mmdet -> ours.

Every function takes a full checkpoint state dict, reads only the keys under ``prefix`` and returns a
new dict keyed by OUR module's names (no prefix), ready for ``load_state_dict(strict=True)``. A key under
``prefix`` that no rule knows raises ``KeyError`` naming it, so format drift is never silent. Buffers
that we rebuild (``relative_position_index``) and HF's unused final ``swin.layernorm`` are dropped.

Formats:
- HF ``MMGroundingDinoForObjectDetection``: backbone under ``model.backbone.conv_encoder.model.``, both
  the transformers-5 layout (``swin.embeddings``, ``attention.q_proj``...) and the hub-file layout
  (``embeddings``, ``attention.self.query``, ``intermediate.dense``...); q/k/v are merged into ``qkv``.
  Neck under ``model.input_proj_vision.{i}.{0: conv, 1: gn}``.
- mmdet (LLMDet / MM-GDINO ``.pth``): ``backbone.stages.{i}.blocks.{j}.attn.w_msa.*``, ``ffn.layers.*``,
  patch merging in ``nn.Unfold`` channel order (reordered here); ``neck.convs.{i}.{conv,gn}``,
  ``neck.extra_convs.{j}.{conv,gn}``.
"""
import re

import torch

HF_BACKBONE_PREFIX = 'model.backbone.conv_encoder.model.'
HF_NECK_PREFIX = 'model.input_proj_vision.'
MMDET_BACKBONE_PREFIX = 'backbone.'
MMDET_NECK_PREFIX = 'neck.'

# (HF block-relative name -> ours); the legacy hub names come first where both could match
_HF_BLOCK_RULES = (
    (r'layernorm_before\.', 'norm1.'),
    (r'layernorm_after\.', 'norm2.'),
    (r'attention\.(?:self\.|relative_position_bias\.)?relative_position_bias_table$',
     'attn.relative_position_bias_table'),
    (r'attention\.(?:o_proj|output\.dense)\.', 'attn.proj.'),
    (r'(?:mlp\.fc1|intermediate\.dense)\.', 'mlp.fc1.'),
    (r'(?:mlp\.fc2|output\.dense)\.', 'mlp.fc2.'),
)
_HF_QKV = {'q_proj': 0, 'query': 0, 'k_proj': 1, 'key': 1, 'v_proj': 2, 'value': 2}
_HF_QKV_RE = re.compile(r'attention\.(?:self\.)?(q_proj|k_proj|v_proj|query|key|value)\.(weight|bias)$')
_DROPPED = re.compile(r'(relative_position_index$|^layernorm\.|^pooler\.)')

_MMDET_BLOCK_RULES = (
    (r'attn\.w_msa\.relative_position_bias_table$', 'attn.relative_position_bias_table'),
    (r'attn\.w_msa\.qkv\.', 'attn.qkv.'),
    (r'attn\.w_msa\.proj\.', 'attn.proj.'),
    (r'ffn\.layers\.0\.0\.', 'mlp.fc1.'),
    (r'ffn\.layers\.1\.', 'mlp.fc2.'),
    (r'norm([12])\.', r'norm\1.'),
)
_UNFOLD_ORDER = [0, 2, 1, 3]  # ours (x00, x10, x01, x11) <-> unfold ((0,0), (0,1), (1,0), (1,1)); self-inverse


def _strip(state_dict, prefix):
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def _unknown(key, prefix, source):
    return KeyError(f'{source} converter: no rule for checkpoint key {prefix + key!r}')


def _apply_rules(rest, rules):
    for pattern, repl in rules:
        new, count = re.subn('^' + pattern, repl, rest)
        if count:
            return new
    return None


def unfold_to_ours_reduction(weight):
    """mmdet patch-merging ``reduction.weight`` ``[2C, 4C]`` (unfold order) -> ours (neighbour blocks)."""
    out_channels, in_channels = weight.shape
    return weight.reshape(out_channels, in_channels // 4, 4)[:, :, _UNFOLD_ORDER].transpose(1, 2).reshape(
        out_channels, in_channels)


def unfold_to_ours_norm(vector):
    """mmdet patch-merging ``norm.{weight,bias}`` ``[4C]`` (unfold order) -> ours."""
    return vector.reshape(-1, 4)[:, _UNFOLD_ORDER].t().reshape(-1)


def convert_swin_hf_to_ours(state_dict, prefix=HF_BACKBONE_PREFIX):
    """HF Swin backbone keys (under ``prefix``) -> ``SwinBackbone`` state dict."""
    out, qkv = {}, {}
    for key, value in _strip(state_dict, prefix).items():
        rest = key[len('swin.'):] if key.startswith('swin.') else key
        if _DROPPED.search(rest):
            continue
        if rest.startswith('embeddings.patch_embeddings.projection.'):
            out['patch_embed.proj.' + rest.rsplit('.', 1)[1]] = value
        elif rest.startswith('embeddings.norm.'):
            out['patch_embed.norm.' + rest.rsplit('.', 1)[1]] = value
        elif rest == 'embeddings.position_embeddings':
            out['absolute_pos_embed'] = value
        elif (m := re.match(r'hidden_states_norms\.stage(\d+)\.(weight|bias)$', rest)):
            out[f'norm{int(m.group(1)) - 1}.{m.group(2)}'] = value
        elif (m := re.match(r'encoder\.layers\.(\d+)\.downsample\.((?:norm|reduction)\.\w+)$', rest)):
            out[f'stages.{m.group(1)}.downsample.{m.group(2)}'] = value
        elif (m := re.match(r'encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.+)$', rest)):
            block = f'stages.{m.group(1)}.blocks.{m.group(2)}.'
            if (q := _HF_QKV_RE.match(m.group(3))):
                qkv.setdefault((block, q.group(2)), [None] * 3)[_HF_QKV[q.group(1)]] = (key, value)
                continue
            new = _apply_rules(m.group(3), _HF_BLOCK_RULES)
            if new is None:
                raise _unknown(key, prefix, 'HF Swin')
            out[block + new] = value
        else:
            raise _unknown(key, prefix, 'HF Swin')
    for (block, kind), parts in qkv.items():
        if any(p is None for p in parts):
            raise KeyError(f'HF Swin converter: {prefix}...{block} {kind}: q/k/v incomplete '
                           f'(found {[p[0] for p in parts if p is not None]})')
        out[f'{block}attn.qkv.{kind}'] = torch.cat([p[1] for p in parts], 0)
    return out


def convert_swin_mmdet_to_ours(state_dict, prefix=MMDET_BACKBONE_PREFIX):
    """mmdet ``SwinTransformer`` keys (under ``prefix``) -> ``SwinBackbone`` state dict."""
    out = {}
    for key, value in _strip(state_dict, prefix).items():
        if key.endswith('relative_position_index'):
            continue
        if key.startswith('patch_embed.projection.'):
            out['patch_embed.proj.' + key.rsplit('.', 1)[1]] = value
        elif key.startswith('patch_embed.norm.') or key == 'absolute_pos_embed' or re.match(r'norm\d+\.', key):
            out[key] = value
        elif (m := re.match(r'stages\.(\d+)\.downsample\.(norm|reduction)\.(weight|bias)$', key)):
            converted = unfold_to_ours_reduction(value) if m.group(2) == 'reduction' else unfold_to_ours_norm(value)
            out[key] = converted
        elif (m := re.match(r'stages\.(\d+)\.blocks\.(\d+)\.(.+)$', key)):
            new = _apply_rules(m.group(3), _MMDET_BLOCK_RULES)
            if new is None:
                raise _unknown(key, prefix, 'mmdet Swin')
            out[f'stages.{m.group(1)}.blocks.{m.group(2)}.{new}'] = value
        else:
            raise _unknown(key, prefix, 'mmdet Swin')
    return out


def convert_neck_hf_to_ours(state_dict, num_inputs, prefix=HF_NECK_PREFIX):
    """HF ``input_proj_vision.{i}.{0,1}`` -> ``ChannelMapperNeck`` (levels ``>= num_inputs`` are extras)."""
    out = {}
    for key, value in _strip(state_dict, prefix).items():
        m = re.match(r'(\d+)\.([01])\.(weight|bias)$', key)
        if m is None:
            raise _unknown(key, prefix, 'HF neck')
        level = int(m.group(1))
        layer = 'conv' if m.group(2) == '0' else 'gn'
        name = f'convs.{level}' if level < num_inputs else f'extra_convs.{level - num_inputs}'
        out[f'{name}.{layer}.{m.group(3)}'] = value
    return out


def convert_neck_mmdet_to_ours(state_dict, prefix=MMDET_NECK_PREFIX):
    """mmdet ``ChannelMapper`` keys (same module names as ours) -> ``ChannelMapperNeck`` state dict."""
    out = {}
    for key, value in _strip(state_dict, prefix).items():
        if not re.match(r'(?:convs|extra_convs)\.\d+\.(?:conv|gn)\.(?:weight|bias)$', key):
            raise _unknown(key, prefix, 'mmdet neck')
        out[key] = value
    return out
