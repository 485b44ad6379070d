from .bert_encoder import BertTextEncoder, load_tokenizer
from .positive_map import spans_to_positive_map
from .prompts import build_category_prompt, build_prompt, chunk_names
from .sub_sentence import sub_sentence_masks
from .vocab import write_bert_vocab

__all__ = ['BertTextEncoder', 'load_tokenizer', 'spans_to_positive_map', 'build_category_prompt',
           'build_prompt', 'chunk_names', 'sub_sentence_masks', 'write_bert_vocab']
