"""Tiny REF-VLM trained from scratch on the synthetic REF-VLM conversations on a CPU (issue 15's "it learns").

Model: a tiny CLIP tower built from its config (96x96 input, 16x16 patches -> 36 visual tokens, 2 layers of
width 64, trained), ``mlp2x_gelu`` projector, a random 4-layer Qwen2 of width 128 with the set's byte-level BPE
tokenizer (+ the 7 REF-VLM tags). Decoder features: a tiny timm ConvNeXt (stages 0-2, trained) plus the ViT
tokens. Box decoder and keypoint decoder (5 keypoints): 3 DETR layers of width 64 with ``anchor='pointer'`` (not in
REF-VLM: each ``<REF>`` query picks a memory cell with a pointer attention and the box / keypoints are regressed
from it; REF-VLM's plain head collapses to the mean box at this size, benchmarks/RESULTS.md). Loss llm x1 + box
x0.5 (+ the pointer's loss inside it) + keypoint x1. AdamW lr 2e-3, batch 16, 2000 iterations (30 warm-up, then
cosine; about 14 minutes on one CPU thread). Chatml prompts without a system turn.

Data: ``python tools/make_synthetic_dataset.py --out data/synthetic_ref_vlm --num-train 400 --num-val 60
--ref-vlm`` (REC, detection, grounded description and keypoint conversations; ``ref_vlm/{train,val}.json``).
Evaluation (``tools/test.py``): REC P@1 (IoU > 0.5) on the val REC questions and the parse-failure rate;
``test_dataloader.dataset.image_ablation='noise'`` gives the no-image baseline.
Run + numbers: ``benchmarks/ref_vlm_learning.py``, benchmarks/RESULTS.md ("REF-VLM it learns").
"""
from mmengine.config import read_base

with read_base():
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.tiny_synthetic_vqa import *  # noqa: F401,F403

from mmengine.dataset import DefaultSampler, pseudo_collate
from transformers import CLIPVisionConfig, Qwen2Config

from llmvision.datasets.ref_vlm_json import RefVLMJsonDataset
from llmvision.evaluation.ref_parse_metric import RefParseMetric
from llmvision.evaluation.refexp_metric import RefExpMetric
from llmvision.models.llm.conversation import ConversationEncoder
from llmvision.models.lmm.llava import vision_model_from_config
from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder
from llmvision.models.lmm.ref_vlm.keypoint_decoder import RefKeypointDecoder
from llmvision.models.lmm.ref_vlm.model import REFVLMModel
from llmvision.models.lmm.ref_vlm.tokens import load_ref_vlm_tokenizer
from llmvision.utils.hf_builder import causal_lm_from_config

# ---------------------------------------------------------------- settings
data_root = 'data/synthetic_ref_vlm/'
image_size = 96
decoder = dict(embed_dims=64, num_layers=3, num_heads=4, ffn_dim=128, num_queries=16, anchor='pointer')

# ---------------------------------------------------------------- model
model = dict(
    type=REFVLMModel,
    vision_encoder=dict(type=vision_model_from_config, seed=0,
                        config=dict(type=CLIPVisionConfig, image_size=image_size, patch_size=16, hidden_size=64,
                                    intermediate_size=128, num_hidden_layers=2, num_attention_heads=4)),
    llm=dict(type=causal_lm_from_config, seed=0,
             config=dict(type=Qwen2Config, vocab_size=768, hidden_size=128, intermediate_size=256,
                         num_hidden_layers=4, num_attention_heads=4, num_key_value_heads=2,
                         max_position_embeddings=512, tie_word_embeddings=False)),
    tokenizer=data_root + 'llm_tokenizer',
    projector='mlp2x_gelu',
    freeze_vision=False,
    stop_strings=['<|im_end|>'],
    max_new_tokens=40,
    visual_features=dict(use_convnext=True, use_vit=True, out_indices=(0, 1, 2),
                         convnext=dict(model_name='convnext_atto', depths=(1, 1, 2, 1), dims=(16, 32, 64, 128))),
    decoders=dict(box=dict(type=RefBoxDecoder, **decoder),
                  keypoint=dict(type=RefKeypointDecoder, num_keypoints=5, sigmas=0.05, **decoder)),
    loss_weights=dict(llm=1.0, box=0.5, keypoint=1.0))

# ---------------------------------------------------------------- data
encoder = dict(type=ConversationEncoder, tokenizer=dict(type=load_ref_vlm_tokenizer, path_or_cfg=data_root +
                                                        'llm_tokenizer'),
               template='chatml', system='', max_length=256)
train_dataloader = dict(
    batch_size=16, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=RefVLMJsonDataset, data_root=data_root, ann_file='ref_vlm/train.json',
                 data_prefix=dict(img='images/'), image_size=image_size, image_aspect='pad', encoder=encoder))
val_dataloader = dict(
    batch_size=32, num_workers=0, sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=RefVLMJsonDataset, data_root=data_root, ann_file='ref_vlm/val.json',
                 data_prefix=dict(img='images/'), image_size=image_size, image_aspect='pad', encoder=encoder,
                 question_types=['rec'], test_mode=True, image_ablation=None))
test_dataloader = val_dataloader
val_evaluator = [dict(type=RefExpMetric, topk=(1,), iou_thr=0.5, iou_mode='>'), dict(type=RefParseMetric)]
test_evaluator = val_evaluator

# ---------------------------------------------------------------- schedule (the tiny LMMs' CPU schedule: AdamW lr 2e-3,
# clip 1, 30 warm-up iterations, then cosine; here over 2000 iterations, batch 16)
max_iters = 2000
train_cfg.update(max_iters=max_iters, val_interval=max_iters)  # noqa: F405
param_scheduler[1].update(end=max_iters, T_max=max_iters - warmup_iters)  # noqa: F405
default_hooks.update(tiny_hooks)  # noqa: F405
default_hooks.checkpoint.update(interval=max_iters)  # noqa: F405
env_cfg.update(dist_cfg=dict(backend='gloo'))  # noqa: F405
