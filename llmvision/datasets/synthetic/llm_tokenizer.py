"""A small Qwen2-like byte-level BPE tokenizer for tiny test LLMs, trained locally and deterministically.

* Pre-tokenisation: a regex split into letter runs (words), single digits, single punctuation marks
  and whitespace runs, then the GPT-2 byte-to-unicode map (byte level: any text encodes, nothing is
  unknown). Unlike Qwen2's split, a word never carries the space or quote before it, so a word gets the
  same tokens wherever it stands (sentence start, after a space, a quote or a newline, before ``?``).
* BPE merges are learned here in plain Python on :func:`.vocabulary.corpus_lines` and
  :func:`.vqa.vqa_corpus_lines` (pairs by
  count, ties broken by the pair's text), so the result never depends on hash order or threads.
* Special tokens ``<|endoftext|>`` (pad), ``<|im_start|>``, ``<|im_end|>`` (eos) follow the BPE
  vocabulary; a ChatML chat template (Qwen2 style, default system prompt) is stored in
  ``tokenizer_config.json`` so ``AutoTokenizer.from_pretrained(dir).apply_chat_template`` works.
"""
import functools
import heapq
import json
import os
from collections import Counter
from pathlib import Path
from typing import Dict, List, Sequence, Tuple, Union

from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers, processors
from tokenizers.models import BPE

from .vocabulary import corpus_lines
from .vqa import vqa_corpus_lines

SPECIAL_TOKENS = ('<|endoftext|>', '<|im_start|>', '<|im_end|>')
DEFAULT_VOCAB_SIZE = 1024
MODEL_MAX_LENGTH = 4096
# words | one digit | one punctuation mark | a whitespace run: nothing glues onto a word.
SPLIT_PATTERN = r"\p{L}+|\p{N}|[^\s\p{L}\p{N}]|\s+"
CHAT_TEMPLATE = (
    "{%- for message in messages -%}"
    "{%- if loop.first and message['role'] != 'system' -%}"
    "{{- '<|im_start|>system\\nYou are a helpful assistant.<|im_end|>\\n' -}}"
    "{%- endif -%}"
    "{{- '<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>\\n' -}}"
    "{%- endfor -%}"
    "{%- if add_generation_prompt -%}{{- '<|im_start|>assistant\\n' -}}{%- endif -%}")


@functools.lru_cache(maxsize=None)
def byte_to_unicode() -> Dict[int, str]:
    """GPT-2's reversible byte -> printable unicode character map (256 entries)."""
    printable = (list(range(ord('!'), ord('~') + 1)) + list(range(ord('¡'), ord('¬') + 1))
                 + list(range(ord('®'), ord('ÿ') + 1)))
    mapping, extra = {}, 0
    for b in range(256):
        if b in printable:
            mapping[b] = chr(b)
        else:
            mapping[b] = chr(256 + extra)
            extra += 1
    return mapping


def _pre_tokenizer():
    return pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(SPLIT_PATTERN), behavior='isolated', invert=False),
        pre_tokenizers.ByteLevel(add_prefix_space=False, trim_offsets=False, use_regex=False)])


def learn_bpe(pieces: Counter, num_merges: int) -> List[Tuple[str, str]]:
    """Learn up to ``num_merges`` BPE merges from byte-level ``pieces`` (piece -> count).

    Each step merges the most frequent adjacent pair (ties: smallest ``(left, right)`` text).
    Stops early when no pair is left (every piece is one symbol). Pair counts are updated
    incrementally (only pieces containing the merged pair are touched; a lazy heap picks the best).
    """
    words = [list(p) for p in sorted(pieces)]
    counts = [pieces[p] for p in sorted(pieces)]
    pair_count: Counter = Counter()
    where: Dict[Tuple[str, str], set] = {}
    for wi, syms in enumerate(words):
        for pair in zip(syms, syms[1:]):
            pair_count[pair] += counts[wi]
            where.setdefault(pair, set()).add(wi)
    heap = [(-c, pair) for pair, c in pair_count.items()]
    heapq.heapify(heap)
    merges: List[Tuple[str, str]] = []
    while len(merges) < num_merges and heap:
        neg, best = heapq.heappop(heap)
        if pair_count.get(best, 0) != -neg or -neg <= 0:
            continue  # stale entry
        merges.append(best)
        joined = best[0] + best[1]
        touched = set()
        for wi in sorted(where.pop(best, ())):
            syms, c = words[wi], counts[wi]
            for pair in zip(syms, syms[1:]):
                pair_count[pair] -= c
                touched.add(pair)
            out, i = [], 0
            while i < len(syms):
                if i + 1 < len(syms) and syms[i] == best[0] and syms[i + 1] == best[1]:
                    out.append(joined)
                    i += 2
                else:
                    out.append(syms[i])
                    i += 1
            words[wi] = out
            for pair in zip(out, out[1:]):
                pair_count[pair] += c
                touched.add(pair)
                where.setdefault(pair, set()).add(wi)
        for pair in sorted(touched):
            if pair_count[pair] > 0:
                heapq.heappush(heap, (-pair_count[pair], pair))
            else:
                pair_count.pop(pair, None)
    return merges


def _backend(vocab: Dict[str, int], merges: Sequence[Tuple[str, str]]) -> Tokenizer:
    tok = Tokenizer(BPE(vocab=vocab, merges=list(merges), byte_fallback=False, fuse_unk=False))
    tok.normalizer = normalizers.NFC()
    tok.pre_tokenizer = _pre_tokenizer()
    tok.decoder = decoders.ByteLevel()
    tok.post_processor = processors.ByteLevel(trim_offsets=False)
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in SPECIAL_TOKENS])
    return tok


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + '.tmp')
    tmp.write_text(json.dumps(obj, indent=2, sort_keys=True, ensure_ascii=False) + '\n', encoding='utf-8')
    os.replace(tmp, path)


def build_llm_tokenizer(out_dir: Union[str, os.PathLike], vocab_size: int = DEFAULT_VOCAB_SIZE,
                        extra_text: Sequence[str] = ()) -> Path:
    """Train and write the tokenizer into ``out_dir`` (created); returns it as a ``Path``.

    Args:
        out_dir: target folder (``tokenizer.json``, ``tokenizer_config.json``, ``special_tokens_map.json``).
        vocab_size: total size including the 256 byte symbols and the 3 special tokens.
        extra_text: more training lines, appended to the generator's corpus.
    """
    if vocab_size < 256 + len(SPECIAL_TOKENS):
        raise ValueError(f'vocab_size={vocab_size} must be >= {256 + len(SPECIAL_TOKENS)} '
                         '(256 byte symbols + special tokens)')
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    pre = _pre_tokenizer()
    pieces: Counter = Counter()
    for line in list(corpus_lines()) + vqa_corpus_lines() + list(extra_text):
        for text in (line, line.capitalize(), ' ' + line):
            pieces.update(p for p, _ in pre.pre_tokenize_str(text))
    b2u = byte_to_unicode()
    alphabet = [b2u[b] for b in range(256)]
    merges = learn_bpe(pieces, vocab_size - len(alphabet) - len(SPECIAL_TOKENS))
    vocab = {s: i for i, s in enumerate(alphabet)}
    for a, b in merges:
        vocab.setdefault(a + b, len(vocab))
    _backend(vocab, merges).save(str(out / 'tokenizer.json'), pretty=True)
    special = {'eos_token': '<|im_end|>', 'pad_token': '<|endoftext|>',
               'additional_special_tokens': ['<|im_start|>', '<|im_end|>']}
    _write_json(out / 'special_tokens_map.json', special)
    _write_json(out / 'tokenizer_config.json', dict(
        special, tokenizer_class='PreTrainedTokenizerFast', bos_token=None, unk_token=None,
        chat_template=CHAT_TEMPLATE, clean_up_tokenization_spaces=False, model_max_length=MODEL_MAX_LENGTH,
        padding_side='right', split_special_tokens=False, errors='replace'))
    return out
