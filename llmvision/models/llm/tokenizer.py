"""Load a causal-LM tokenizer from a local folder, a builder config or an object (never downloads).

``load_tokenizer('checkpoints/qwen2-0.5b')`` -> ``AutoTokenizer.from_pretrained`` on that folder;
``load_tokenizer(dict(type=AutoTokenizer.from_pretrained, pretrained_model_name_or_path=...))`` -> built;
a tokenizer object passes through. A path that is not a folder raises ``FileNotFoundError`` saying which
files to put there.
"""
import os

from llmvision.utils.hf_builder import build_object


def load_tokenizer(tokenizer):
    """Return a ``transformers`` tokenizer for ``tokenizer`` (local path, ``dict(type=...)`` or object).

    Raises:
        FileNotFoundError: ``tokenizer`` is a path (or a ``from_pretrained`` config path) that is not an
            existing folder.
    """
    if isinstance(tokenizer, (str, os.PathLike)):
        if not os.path.isdir(tokenizer):
            raise FileNotFoundError(f'LLM tokenizer directory {str(tokenizer)!r} does not exist: put the '
                                    'tokenizer files (tokenizer.json, tokenizer_config.json) there '
                                    '(llmvision never downloads)')
        from transformers import AutoTokenizer
        return AutoTokenizer.from_pretrained(str(tokenizer))
    if tokenizer is None:
        raise ValueError('load_tokenizer: got None; give a local tokenizer folder, a dict(type=...) config '
                         'or a tokenizer object')
    return build_object(tokenizer)
