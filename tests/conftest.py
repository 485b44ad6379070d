"""Shared fixtures: a small synthetic grounding dataset built once per test session.

The dataset (images, ODVG jsonl, LVIS json, RefCOCO refer layout) and the two locally built
tokenizers (BERT-style WordPiece for the detector, a chat-templated one for tiny LLMs) come
from :func:`llmvision.datasets.synthetic.make_synthetic_dataset`; nothing is downloaded.
"""
import os

import pytest
import torch

torch.set_num_threads(max(1, min(2, os.cpu_count() or 1)))


@pytest.fixture(scope='session')
def synthetic_data(tmp_path_factory):
    """Small synthetic set (seed 0): returns the generator's paths object."""
    from llmvision.datasets.synthetic import make_synthetic_dataset
    root = tmp_path_factory.mktemp('synthetic')
    return make_synthetic_dataset(root, seed=0, num_train=24, num_val=8)


@pytest.fixture(scope='session')
def tokenizer(synthetic_data):
    """The synthetic set's local LLM tokenizer (a test module may define its own ``tokenizer``)."""
    from transformers import AutoTokenizer
    return AutoTokenizer.from_pretrained(str(synthetic_data.llm_tokenizer))
