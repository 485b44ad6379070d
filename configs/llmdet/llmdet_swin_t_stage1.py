"""LLMDet-T stage 1 (aligner): train only the image projector on p5 image captions.

    bash dist_train.sh configs/llmdet/llmdet_swin_t_stage1.py 8

REFERENCE.md section 9: before co-training, the projector that maps detector features to the LLM is
aligned alone: the detector (Swin, neck, BERT, encoder, decoder, heads) and the LLM are frozen, no
LoRA, no region captions, no LLM cross-attention blocks; the image caption comes from the 20x20 p5
grid (400 visual tokens, sequence cut at 1200 tokens as in the only-p5 variant). Only
``captioner.image_tokenizer`` trains (the projector, its box position projection); freezing is done
when the model is built (``llmvision.utils.freeze.build_partly_frozen``), so the optimizer and DDP
see only those parameters. The released LLMDet ships the result of this stage
(``mm_projector2.bin`` of its ``my_llava-onevision-qwen2-0.5b-ov-2``) rather than a stage-1
config; its README says the stock ``llava-onevision-qwen2-0.5b-ov`` also reproduces the results
once the projector is pre-trained, so this stage starts from the stock LLM folder with a randomly
initialised projector (``projector_checkpoint=None``). Stage 2 (``llmdet_swin_t.py``) loads a
pre-aligned projector into both projectors from ``projector_checkpoint``: the released
``mm_projector2.bin`` or this run's checkpoint as it is (``--cfg-options
model.captioner.projector_checkpoint=work_dirs/llmdet_swin_t_stage1/iter_N.pth``; its
``captioner.image_tokenizer.projector.*`` goes into both projectors).

Not published for this stage (?): schedule and learning rate; this file keeps the stage-2 schedule
(``llmdet_150k``) and data, set ``train_cfg.max_iters`` / ``optim_wrapper.optimizer.lr`` for a
shorter alignment run. The frozen detector still computes and logs its losses (they carry no
gradient; they show that it stays as loaded).
"""
from mmengine.config import read_base

with read_base():
    from .llmdet_swin_t import *  # noqa: F401,F403

from llmvision.utils.freeze import build_partly_frozen

stage1_llm_path = 'checkpoints/llava-onevision-qwen2-0.5b-ov'  # the stock LLaVA-OneVision-Qwen2-0.5B
model['captioner'].update(  # noqa: F405
    llm=dict(model['captioner']['llm'], path=stage1_llm_path),  # noqa: F405
    tokenizer=stage1_llm_path,
    projector_checkpoint=None,      # the projector is what this stage trains
    lora=None,                      # the LLM stays as loaded
    image_token_levels=(2,),        # p5 (stride 32) of the 4 levels
    image_token_sizes=(20,),
    max_image_sequence_len=1200,
    region_loss_weight=0.0,         # image captions only (0 skips the region LLM pass)
    region_cross_attn=None)
stage1_trainable = ('captioner.image_tokenizer',)
model = dict(type=build_partly_frozen, model=model, trainable=stage1_trainable)  # noqa: F405
