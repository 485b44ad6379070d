"""QLoRA base for the REC selector: quantized_causal_lm builds the released BitsAndBytesConfig, and says
clearly what is missing on a machine without CUDA or bitsandbytes."""
import pytest
import torch

from llmvision.utils.hf_builder import quantized_causal_lm


def test_needs_cuda_and_bitsandbytes(monkeypatch, tmp_path):
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: False)
    with pytest.raises(RuntimeError, match='need a CUDA GPU'):
        quantized_causal_lm(str(tmp_path))
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr('importlib.util.find_spec', lambda name: None if name == 'bitsandbytes' else object())
    with pytest.raises(ImportError, match='pip install bitsandbytes'):
        quantized_causal_lm(str(tmp_path))
    with pytest.raises(ValueError, match='bits must be 4 or 8'):
        quantized_causal_lm(str(tmp_path), bits=3)


def test_released_nf4_config_is_built(monkeypatch, tmp_path):
    """What reaches from_pretrained and peft (the loading itself needs a GPU)."""
    import peft
    import transformers
    seen = {}
    monkeypatch.setattr(torch.cuda, 'is_available', lambda: True)
    monkeypatch.setattr('importlib.util.find_spec', lambda name: object())
    monkeypatch.setattr(transformers.BitsAndBytesConfig, 'post_init', lambda self: None)  # skips the bnb import

    def fake_from_pretrained(pretrained_model_name_or_path, **kwargs):
        seen.update(kwargs, path=pretrained_model_name_or_path)
        return torch.nn.Linear(2, 2)
    fake_from_pretrained.__name__ = 'from_pretrained'
    monkeypatch.setattr(transformers.AutoModelForCausalLM, 'from_pretrained', fake_from_pretrained)
    monkeypatch.setattr(peft, 'prepare_model_for_kbit_training', lambda m: ('prepared', m))
    out = quantized_causal_lm(str(tmp_path), attn_implementation='sdpa')
    q = seen['quantization_config']
    assert out[0] == 'prepared' and seen['path'] == str(tmp_path) and seen['attn_implementation'] == 'sdpa'
    assert q.load_in_4bit and q.bnb_4bit_quant_type == 'nf4' and q.bnb_4bit_use_double_quant
    assert q.bnb_4bit_compute_dtype == torch.bfloat16
    # a missing local folder is named before anything is loaded
    with pytest.raises(FileNotFoundError, match='llmvision never downloads'):
        quantized_causal_lm(str(tmp_path / 'missing'))
