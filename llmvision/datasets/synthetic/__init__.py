"""Synthetic grounding dataset (coloured shapes) and locally built tokenizers, for offline tests.

``make_synthetic_dataset(out_dir, seed=0, num_train=200, num_val=50, image_size=(256, 320))``
writes images, ODVG (grounding + detection form), LVIS v1 json, a RefCOCO refer layout and two
tokenizers (:func:`build_bert_tokenizer`, :func:`build_llm_tokenizer`) and returns
:class:`SyntheticPaths`. Everything is deterministic per seed; nothing is downloaded.
"""
from .bert_tokenizer import build_bert_tokenizer
from .generator import SyntheticPaths, make_synthetic_dataset
from .llm_tokenizer import build_llm_tokenizer
from .ref_vlm import make_ref_vlm_set
from .vocabulary import category_names

__all__ = ['make_synthetic_dataset', 'SyntheticPaths', 'build_bert_tokenizer', 'build_llm_tokenizer',
           'category_names', 'make_ref_vlm_set']
