"""LLMDet-T "only p5": the image caption sees the stride-32 level only (REFERENCE.md section 9).

    bash dist_train.sh configs/llmdet/llmdet_swin_t_only_p5.py 8

As released (``use_p4_input=False``, ``lmm_max_token_length=1200`` on top of the Swin-T config):
the image-level caption gets the 20x20 p5 grid alone (400 visual tokens, no separator, no 27x27 p4
grid) and the whole sequence (prompt + visual tokens + answer) is cut at 1200 tokens. Everything
else (region captions, LLM cross-attention blocks, recipe, data) is ``llmdet_swin_t.py``; switch
back with ``image_token_levels=(2, 1), image_token_sizes=(20, 27), max_image_sequence_len=1600``.
Published: LVIS minival 44.5 AP (APr 38.6), val 34.6 AP; the release evaluates its other
benchmarks with this model.
"""
from mmengine.config import read_base

with read_base():
    from .llmdet_swin_t import *  # noqa: F401,F403

model['captioner'].update(  # noqa: F405
    image_token_levels=(2,),        # p5 (stride 32) of the 4 levels
    image_token_sizes=(20,),
    max_image_sequence_len=1200)
