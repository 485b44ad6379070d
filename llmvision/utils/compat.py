"""Compatibility patches for mmengine 0.10.7 on current torch/setuptools (filled in by the foundation work)."""
