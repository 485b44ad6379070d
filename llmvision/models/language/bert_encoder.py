"""BERT text encoder for Grounding-DINO: tokenization, sub-sentence masks, BERT forward.

The 768 -> 256 projection (``text_feat_map``) lives in the detector, as in mmdet/HF.
"""
import os
from typing import Dict, List, Optional, Sequence

import torch
from torch import nn

from llmvision.registry import MODELS

from .sub_sentence import sub_sentence_masks

_MISSING_MSG = (
    'BertTextEncoder: no BERT found at {path!r}. Put a HuggingFace BERT folder there (config.json, '
    'vocab.txt / tokenizer.json and model.safetensors or pytorch_model.bin, e.g. a local copy of '
    '"bert-base-uncased"), or pass bert_config=dict(...) plus tokenizer=<folder with vocab.txt> '
    'for a randomly initialised BERT. Nothing is downloaded.')


def load_tokenizer(path: str):
    """A fast BERT tokenizer from a local folder (``vocab.txt`` or ``tokenizer.json``)."""
    from transformers import AutoTokenizer, BertTokenizer
    if not os.path.isdir(path):
        raise FileNotFoundError(_MISSING_MSG.format(path=path))
    if os.path.exists(os.path.join(path, 'tokenizer_config.json')) or \
            os.path.exists(os.path.join(path, 'tokenizer.json')):
        return AutoTokenizer.from_pretrained(path, local_files_only=True)
    vocab = os.path.join(path, 'vocab.txt')
    if not os.path.exists(vocab):
        raise FileNotFoundError(_MISSING_MSG.format(path=path))
    return BertTokenizer.from_pretrained(path, local_files_only=True)


@MODELS.register_module()
class BertTextEncoder(nn.Module):
    """Tokenize captions and encode them with BERT using sub-sentence masks.

    Args:
        name_or_path: local folder of a HuggingFace BERT (weights + tokenizer).
        bert_config: instead of weights, a ``transformers.BertConfig`` kwargs dict (random init).
        tokenizer: local tokenizer folder; defaults to ``name_or_path``.
        max_tokens: truncate tokenized captions to this many tokens (256).
        pad_to_max: pad every batch to ``max_tokens`` (mmdet default: pad to the longest).
        use_sub_sentence: phrase-local masks + restarting position ids (Grounding-DINO default).
        special_tokens: delimiter tokens (their ids come from the tokenizer).
        position_convention: ``'mmdet'`` or ``'hf'``, see :mod:`.sub_sentence`.
    """

    def __init__(self, name_or_path: Optional[str] = None, bert_config: Optional[dict] = None,
                 tokenizer: Optional[str] = None, max_tokens: int = 256, pad_to_max: bool = False,
                 use_sub_sentence: bool = True,
                 special_tokens: Sequence[str] = ('[CLS]', '[SEP]', '.', '?'),
                 position_convention: str = 'mmdet'):
        super().__init__()
        from transformers import BertConfig, BertModel
        if name_or_path is None and bert_config is None:
            raise ValueError('BertTextEncoder needs name_or_path (a local BERT folder) or bert_config')
        tok_path = tokenizer or name_or_path
        if tok_path is None:
            raise ValueError('BertTextEncoder: with bert_config, also give tokenizer=<local folder>')
        self.tokenizer = load_tokenizer(tok_path)
        if bert_config is not None:
            self.bert = BertModel(BertConfig(**bert_config), add_pooling_layer=False)
        else:
            if not os.path.isdir(name_or_path):
                raise FileNotFoundError(_MISSING_MSG.format(path=name_or_path))
            self.bert = BertModel.from_pretrained(name_or_path, add_pooling_layer=False,
                                                  local_files_only=True)
        self.hidden_size = self.bert.config.hidden_size
        self.max_tokens = max_tokens
        self.pad_to_max = pad_to_max
        self.use_sub_sentence = use_sub_sentence
        self.position_convention = position_convention
        ids = self.tokenizer.convert_tokens_to_ids(list(special_tokens))
        unk = self.tokenizer.unk_token_id
        self.special_ids = [i for i, t in zip(ids, special_tokens) if i is not None and (i != unk or t == '[UNK]')]

    def tokenize(self, captions: List[str], device=None) -> Dict[str, torch.Tensor]:
        """Captions -> ``input_ids/attention_mask/token_type_ids [B, L]`` + ``offsets`` (per caption)."""
        tok = self.tokenizer(captions, padding='max_length' if self.pad_to_max else 'longest',
                             truncation=True, max_length=self.max_tokens, return_tensors='pt',
                             return_offsets_mapping=True)
        out = {k: tok[k].to(device) if device is not None else tok[k]
               for k in ('input_ids', 'attention_mask', 'token_type_ids')}
        out['offsets'] = [o.tolist() for o in tok['offset_mapping']]
        return out

    def forward(self, captions: List[str]) -> Dict[str, torch.Tensor]:
        """Returns ``embedded [B, L, H]``, ``text_token_mask [B, L]`` bool (True = real token),
        ``input_ids [B, L]``, ``position_ids [B, L]``, ``text_self_attention_masks [B, L, L]``
        bool (True = may attend) and ``offsets`` (per caption, per token char span)."""
        device = next(self.bert.parameters()).device
        tok = self.tokenize(captions, device)
        input_ids = tok['input_ids']
        if self.use_sub_sentence:
            masks, position_ids = sub_sentence_masks(input_ids, self.special_ids,
                                                     self.position_convention)
            attn = masks[:, None]  # [B, 1, L, L] bool, True = attend
        else:
            masks = tok['attention_mask'].bool()[:, None, :].expand(-1, input_ids.shape[1], -1)
            position_ids = None
            attn = tok['attention_mask']
        out = self.bert(input_ids=input_ids, attention_mask=attn,
                        token_type_ids=tok['token_type_ids'], position_ids=position_ids)
        return dict(embedded=out.last_hidden_state, text_token_mask=tok['attention_mask'].bool(),
                    input_ids=input_ids, position_ids=position_ids if position_ids is not None
                    else torch.arange(input_ids.shape[1], device=device).expand_as(input_ids),
                    text_self_attention_masks=masks, offsets=tok['offsets'])
