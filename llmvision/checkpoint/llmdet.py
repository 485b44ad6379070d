"""Released LLMDet checkpoints -> our :class:`LLMDet`, loaded WHOLE (detector + captioner), with a key report.

The released LLMDet (github.com/iSEE-Laboratory/LLMDet @ 5426efb, mmdet 3) saves one mmdet state dict: the
Grounding-DINO keys (converted by :func:`convert_mmdet_grounding_dino`) and the captioner's, which are mapped
here instead of being set aside:

====================================================  ==========================================================
released key                                          ours (``P`` = the LLM inside ``captioner.llm``)
====================================================  ==========================================================
``connector.vision_projector.0.{0,2}.*``              ``captioner.image_tokenizer.projector.proj.{0,2}.*``
``connector.pos_proj.*``                              ``captioner.image_tokenizer.projector.pos_proj.*``
``region_connector.<same>``                           ``captioner.region_projector.<same>``
``image_seperate.weight`` ``[1, H]``                  ``captioner.image_tokenizer.separators`` ``[1, H]``
``ref_point_head.layers.{0,1}.*``                     ``captioner.region_cross_attn.ref_point_head.{0,2}.*``
``lmm.model.embed_tokens`` / ``.norm`` / ``lmm.lm_head``  ``P.model.embed_tokens`` / ``.norm`` / ``P.lm_head``
``lmm.model.layers.{i}.<module>.<proj>.weight``       ``P.model.layers.{i}.<module>.<proj>.base_layer.weight``
``lmm.model.layers.{i}.<...>.<proj>.lora_{A,B}.*``    ``P.model.layers.{i}.<...>.<proj>.lora_{A,B}.<adapter>.weight``
cross-attention block of LLM layer ``i`` / ``k``-th   ``captioner.region_cross_attn.blocks.{k}.{down_proj,up_proj,
block (``down_proj``, MSDA, ``up_proj``, RMSNorm)     attn.<msda>,norm}.*``
``lmm.model.image_newline``                           none: LLaVA-OneVision's unused newline token (``ignored``)
====================================================  ==========================================================

Which names are known and which are inferred: ``connector``, ``region_connector``, ``image_seperate`` (sic),
``ref_point_head = MLP(512, 256, 256, 2)`` (mmdet ``MLP``: ``layers.0``, ``layers.1``), the projector's
``vision_projector_with_pos_proj`` layout and the ``lmm.`` prefix of the LLaVA-Qwen model (fairscale's
``checkpoint_wrapper`` patches ``forward`` in place and adds no prefix) are read from the released code. The LLM
side (its own LoRA class and ``build_cross_attention``) is not part of the published files we could read, so
those key names are matched by pattern: LoRA factors as ``<proj>.lora_A`` / ``lora_B`` (optionally with an
adapter name), cross-attention blocks either as a named sub-module of the decoder layer they precede
(``lmm.model.layers.{i}.<name>.*``, block ``k`` = position of ``i`` in ``layer_ids``) or as the ``k``-th entry
of a list beside the layers (``lmm.model.<name>.{k}.*``), with leaves ``down_proj``, ``up_proj``, ``*norm*``
and the MSDA's ``sampling_offsets`` / ``attention_weights`` / ``value_proj`` / ``output_proj``. A key that fits
no rule is reported in ``unconverted`` by name, never dropped silently; LoRA scaling (``alpha / r``) must match
the config (released r 128, alpha 256).

:func:`load_llmdet_projector` loads a pre-aligned projector file (``mm_projector2.bin``, prefix
``mm_projector``) into BOTH projectors, as the released code fills ``connector`` and ``region_connector`` from it.
Our stage-1 aligner's checkpoint (an mmengine ``{'state_dict': ..., 'meta': ...}`` with our key names) is read
the same way: its image projector ``captioner.image_tokenizer.projector.*`` goes into both projectors (see
:func:`~llmvision.models.captioners.projector.released_projector_state`).
"""
import os
import re
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import torch

from llmvision.models.captioners.projector import released_projector_state

from .load import read_state_dict
from .mmdet_grounding_dino import convert_mmdet_grounding_dino
from .report import ConversionReport, load_converted

IGNORED = {'lmm.model.image_newline': "LLaVA-OneVision's image-newline token; LLMDet's captioner never uses it"}
_LAYER_PARTS = ('self_attn', 'mlp', 'input_layernorm', 'post_attention_layernorm')
_MSDA = r'(sampling_offsets|attention_weights|value_proj|output_proj)\.(weight|bias)'


@dataclass
class LLMDetConversionReport(ConversionReport):
    """:class:`ConversionReport` plus ``ignored``: released keys without a counterpart on purpose (key -> why)."""
    ignored: Dict[str, str] = field(default_factory=dict)

    def summary(self, limit: int = 20) -> str:
        shown = dict(list(self.ignored.items())[:limit])
        more = f' ... (+{len(self.ignored) - limit})' if len(self.ignored) > limit else ''
        return super().summary(limit) + f'\nignored on purpose ({len(self.ignored)}): {shown}{more}'


def _captioner_prefix(model) -> str:
    return 'captioner.' if hasattr(model, 'captioner') else ''


def _llm_layout(own: Dict[str, torch.Tensor], cap: str) -> Tuple[str, Optional[str]]:
    """``(prefix of the HF causal LM, peft adapter name or None)`` from our state-dict keys."""
    emb = [k for k in own if k.startswith(cap + 'llm.') and k.endswith('model.embed_tokens.weight')]
    if len(emb) != 1:
        raise ValueError(f'cannot find the captioner LLM (keys {cap}llm.*model.embed_tokens.weight: {emb})')
    adapters = {m.group(1) for k in own if (m := re.search(r'\.lora_A\.([^.]+)\.weight$', k))}
    if len(adapters) > 1:
        raise ValueError(f'several LoRA adapters in the model ({sorted(adapters)}); load one at a time')
    return emb[0][:-len('model.embed_tokens.weight')], (adapters.pop() if adapters else None)


def _xattn_leaf(rest: str) -> Optional[str]:
    """Released cross-attention block leaf -> ours (``down_proj``, ``up_proj``, ``attn.*``, ``norm.weight``)."""
    if re.fullmatch(r'(down_proj|up_proj)\.(weight|bias)', rest):
        return rest
    if (m := re.fullmatch(r'(?:\w+\.)?' + _MSDA, rest)):
        return f'attn.{m.group(1)}.{m.group(2)}'
    if re.fullmatch(r'\w*norm\w*\.weight', rest):
        return 'norm.weight'
    return None


class _CaptionerKeys:
    """Maps one released captioner key to ``(our key, value)``; ``None`` when no rule fits."""

    def __init__(self, model):
        self.cap = _captioner_prefix(model)
        self.own = model.state_dict()
        self.llm, self.adapter = _llm_layout(self.own, self.cap)
        xattn = getattr(getattr(model, 'captioner', model), 'region_cross_attn', None)
        self.layer_ids = list(xattn.layer_ids) if xattn is not None else []

    def __call__(self, key: str, value: torch.Tensor):
        cap = self.cap
        if (m := re.fullmatch(r'(connector|region_connector)\.(?:vision_projector\.0\.([02])|(pos_proj))\.'
                              r'(weight|bias)', key)):
            target = 'image_tokenizer.projector' if m.group(1) == 'connector' else 'region_projector'
            leaf = f'proj.{m.group(2)}' if m.group(2) else 'pos_proj'
            return f'{cap}{target}.{leaf}.{m.group(4)}', value
        if key in ('image_seperate.weight', 'image_separate.weight'):
            own = self.own.get(f'{cap}image_tokenizer.separators')
            shaped = value.reshape(own.shape) if own is not None and own.numel() == value.numel() else value
            return f'{cap}image_tokenizer.separators', shaped
        if (m := re.fullmatch(r'ref_point_head\.layers\.([01])\.(weight|bias)', key)):
            return f'{cap}region_cross_attn.ref_point_head.{2 * int(m.group(1))}.{m.group(2)}', value
        if key in ('lmm.model.embed_tokens.weight', 'lmm.model.norm.weight'):
            return self.llm + key[len('lmm.'):], value
        if key == 'lmm.lm_head.weight':
            return self.llm + 'lm_head.weight', value
        if (m := re.fullmatch(r'lmm\.model\.layers\.(\d+)\.(\w+)\.(.+)', key)):
            return self._layer_key(int(m.group(1)), m.group(2), m.group(3), value)
        if (m := re.fullmatch(r'lmm\.model\.(\w+)\.(\d+)\.(.+)', key)) and m.group(1) != 'layers':
            leaf = _xattn_leaf(m.group(3))
            if leaf is not None:
                return f'{cap}region_cross_attn.blocks.{m.group(2)}.{leaf}', value
        return None

    def _layer_key(self, i: int, part: str, rest: str, value):
        base = f'{self.llm}model.layers.{i}.{part}'
        if part in ('input_layernorm', 'post_attention_layernorm') and rest == 'weight':
            return f'{base}.weight', value
        if part in ('self_attn', 'mlp'):
            if (m := re.fullmatch(r'(\w+_proj)\.(weight|bias)', rest)):
                wrapped = f'{base}.{m.group(1)}.base_layer.{m.group(2)}'
                return (wrapped if wrapped in self.own else f'{base}.{rest}'), value
            if (m := re.fullmatch(r'(\w+_proj)\.lora_([AaBb])(?:\.[^.]+)?\.weight', rest)):
                adapter = self.adapter or 'default'
                return f'{base}.{m.group(1)}.lora_{m.group(2).upper()}.{adapter}.weight', value
            return None
        leaf = _xattn_leaf(rest)
        if leaf is None or i not in self.layer_ids:
            return None      # a block before a layer our config has none for: reported as unconverted
        return f'{self.cap}region_cross_attn.blocks.{self.layer_ids.index(i)}.{leaf}', value


def convert_llmdet(state_dict: Dict[str, torch.Tensor], model) -> Tuple[Dict[str, torch.Tensor],
                                                                         LLMDetConversionReport]:
    """Released LLMDet state dict -> ``(ours, report)`` for ``model`` (an :class:`LLMDet` with its captioner).

    The model is needed to resolve where the LLM sits (peft wrapper or not, its adapter name) and which LLM
    layers carry cross-attention blocks. Nothing is set aside: ``report.side`` stays empty; keys that fit no rule
    are in ``report.unconverted``, keys without a counterpart on purpose in ``report.ignored``.
    """
    if getattr(model, 'captioner', None) is None:
        raise ValueError('convert_llmdet needs an LLMDet with its captioner (use_captioner=True); for the detector '
                         'alone use load_grounding_dino_checkpoint, which sets the captioner keys aside')
    out, det_report = convert_mmdet_grounding_dino(state_dict)
    report = LLMDetConversionReport(unconverted=list(det_report.unconverted))
    mapper = _CaptionerKeys(model)
    for key, value in det_report.side.items():
        if key.startswith('lmm._checkpoint_wrapped_module.'):     # torch's checkpoint_wrapper, if one was used
            key = 'lmm.' + key[len('lmm._checkpoint_wrapped_module.'):]
        if key in IGNORED:
            report.ignored[key] = IGNORED[key]
            continue
        mapped = mapper(key, value)
        if mapped is None:
            report.unconverted.append(key)
        elif mapped[0] in out:
            raise KeyError(f'released keys {key!r} and another one both map to {mapped[0]!r}')
        else:
            out[mapped[0]] = mapped[1]
    for key, value in mapper.own.items():      # zero-size parameters (no separator with one image level)
        if key.startswith(mapper.cap) and value.numel() == 0 and key not in out:
            out[key] = value
    return out, report


def load_llmdet_checkpoint(model, checkpoint, strict: bool = False) -> LLMDetConversionReport:
    """Convert a released LLMDet checkpoint (path or state dict) and load it into ``model``, whole.

    ``strict=True`` raises a ``KeyError`` with the report when a key is unconverted, missing, unexpected or of
    another shape.
    """
    sd = read_state_dict(os.fspath(checkpoint)) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    converted, report = convert_llmdet(sd, model)
    return load_converted(model, converted, report, strict=strict)


def convert_llmdet_projector(state_dict: Dict[str, torch.Tensor], model, prefix: str = 'mm_projector'
                             ) -> Tuple[Dict[str, torch.Tensor], LLMDetConversionReport]:
    """A pre-aligned projector file -> our keys of BOTH projectors (image and region) of ``model``.

    ``model`` is an :class:`LLMDet` or an :class:`LLMCaptioner`. ``state_dict`` is a released projector file
    (keys under ``prefix``) or one of our checkpoints, e.g. stage 1's, bare or under ``'state_dict'`` (its
    image projector is used). Keys that are not projector weights are listed in ``report.ignored``; projector
    keys that fit no layout in ``report.unconverted``.
    """
    ours, unconverted, other = released_projector_state(state_dict, prefix)
    report = LLMDetConversionReport(unconverted=unconverted)
    report.ignored.update({k: 'not a projector weight (or not the image projector of our checkpoint)'
                           for k in other})
    cap = _captioner_prefix(model)
    out = {}
    for target in ('image_tokenizer.projector.', 'region_projector.'):
        out.update({cap + target + k: v for k, v in ours.items()})
    return out, report


def load_llmdet_projector(model, checkpoint, prefix: str = 'mm_projector',
                          strict: bool = False) -> LLMDetConversionReport:
    """Load ``mm_projector2.bin`` or our stage-1 checkpoint (path or loaded dict) into both projectors.

    ``report.missing`` lists only projector keys the file lacks (``pos_proj.*`` for a plain LLaVA
    ``mlp2x_gelu`` file).
    """
    sd = read_state_dict(os.fspath(checkpoint)) if isinstance(checkpoint, (str, os.PathLike)) else checkpoint
    converted, report = convert_llmdet_projector(sd, model, prefix)
    if not converted:
        raise KeyError(f'no projector keys under {prefix!r} nor ours (image_tokenizer.projector.*) in the file; '
                       f'first keys: {list(sd)[:5]}')
    own = model.state_dict()
    usable = {}
    for k, v in converted.items():
        if k not in own:
            report.unexpected.append(k)
        elif tuple(v.shape) != tuple(own[k].shape):
            report.shape_mismatch.append((k, tuple(v.shape), tuple(own[k].shape)))
        else:
            usable[k] = v
    model.load_state_dict(usable, strict=False)
    cap = _captioner_prefix(model)
    targets = tuple(cap + t for t in ('image_tokenizer.projector.', 'region_projector.'))
    report.missing = [k for k in own if k.startswith(targets) and k not in converted]
    if strict and not report.ok:
        raise KeyError('projector file does not match the model:\n' + report.summary())
    return report

__all__: List[str] = ['convert_llmdet', 'load_llmdet_checkpoint', 'convert_llmdet_projector',
                      'load_llmdet_projector', 'LLMDetConversionReport']
