"""A BERT-style lower-cased WordPiece tokenizer covering the synthetic generator's words.

Built directly (no training, so it is exactly reproducible) with the ``tokenizers`` library:
vocab = ``[PAD]=0 [UNK]=1 [CLS]=2 [SEP]=3 [MASK]=4``, punctuation, digits, single letters and
their ``##`` continuations (so any lower-case ASCII word still encodes without ``[UNK]``), then
every word of :func:`.vocabulary.all_words` as a whole token. Saved with the standard files
(``vocab.txt``, ``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``), so
``transformers.AutoTokenizer.from_pretrained(dir)`` loads a fast BERT tokenizer.
"""
import json
import os
import string
from pathlib import Path
from typing import List, Union

from tokenizers import Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import WordPiece

from .vocabulary import DIGITS, PUNCTUATION, all_words

SPECIAL_TOKENS = ('[PAD]', '[UNK]', '[CLS]', '[SEP]', '[MASK]')
MODEL_MAX_LENGTH = 512


def bert_vocab() -> List[str]:
    """The ordered vocabulary (index = token id)."""
    vocab: List[str] = list(SPECIAL_TOKENS)
    seen = set(vocab)

    def add(tok):
        if tok not in seen:
            seen.add(tok)
            vocab.append(tok)

    for ch in PUNCTUATION + DIGITS + string.ascii_lowercase:
        add(ch)
    for ch in DIGITS + string.ascii_lowercase:
        add('##' + ch)
    for word in all_words():
        add(word)
    return vocab


def _backend(vocab: List[str]) -> Tokenizer:
    tok = Tokenizer(WordPiece({t: i for i, t in enumerate(vocab)}, unk_token='[UNK]',
                              max_input_chars_per_word=100))
    tok.normalizer = normalizers.BertNormalizer(clean_text=True, handle_chinese_chars=True,
                                                strip_accents=None, lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.post_processor = processors.TemplateProcessing(
        single='[CLS]:0 $A:0 [SEP]:0', pair='[CLS]:0 $A:0 [SEP]:0 $B:1 [SEP]:1',
        special_tokens=[('[CLS]', vocab.index('[CLS]')), ('[SEP]', vocab.index('[SEP]'))])
    tok.decoder = decoders.WordPiece(prefix='##')
    return tok


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True) + '\n', encoding='utf-8')
    os.replace(tmp, path)


def build_bert_tokenizer(out_dir: Union[str, os.PathLike]) -> Path:
    """Write the tokenizer files into ``out_dir`` (created) and return it as a ``Path``.

    Deterministic: the same files byte for byte on every call.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    vocab = bert_vocab()
    (out / 'vocab.txt').write_text(''.join(t + '\n' for t in vocab), encoding='utf-8')
    _backend(vocab).save(str(out / 'tokenizer.json'), pretty=True)
    special = {'pad_token': '[PAD]', 'unk_token': '[UNK]', 'cls_token': '[CLS]', 'sep_token': '[SEP]',
               'mask_token': '[MASK]'}
    _write_json(out / 'special_tokens_map.json', special)
    _write_json(out / 'tokenizer_config.json', dict(
        special, tokenizer_class='BertTokenizer', do_lower_case=True, strip_accents=None,
        tokenize_chinese_chars=True, clean_up_tokenization_spaces=True, model_max_length=MODEL_MAX_LENGTH,
        model_input_names=['input_ids', 'token_type_ids', 'attention_mask']))
    return out
