"""REF-VLM stage 2 (Vicuna-7B, as the original): LLaVA-1.5 base + <REF> box decoder, trained on triplet answers.

CLIP ViT-L/14-336 (frozen; layer -2 patch tokens) -> mlp2x_gelu -> Vicuna-7B v1.5 (trained), Vicuna v1 template.
Decoder features: CLIP-ConvNeXt stages 0-2 (a timm ConvNeXt-L built here, weights from a local state dict) plus
the ViT tokens. Box decoder: 6 DETR layers, d 256, 8 heads, FFN 2048, 100 queries; L1 x5 + GIoU x2 in-group
Hungarian matching; loss llm x1 + box x0.5. Schedule (REFERENCE.md section 7 / issue 15): AdamW lr 2e-6, 1 epoch,
clip 1, warm-up 3%, cosine, bf16.

Local files (llmvision never downloads): ``checkpoints/vicuna-7b-v1.5/``, ``checkpoints/clip-vit-large-patch14-336/``,
``checkpoints/clip_convnext_large/convnext_timm.pth`` (a timm ``convnext_large`` state dict of the CLIP ConvNeXt
tower), ``load_from`` = the LLaVA-1.5 stage-1/2 checkpoint; data ``data/ref_vlm/train.json`` (LLaVA json with
``ref_targets``, see ``llmvision/datasets/ref_vlm_json.py``) with images under ``data/coco/train2014/``; REC test
``data/shikra/REC_refcoco_unc_val.jsonl`` (Shikra jsonl).

    bash dist_train.sh configs/ref_vlm/ref_vlm_vicuna_7b_stage2.py 8 --deepspeed zero3 --amp bf16
"""
from mmengine.config import read_base

with read_base():
    from .._base_.models.llava_v15_clip_l336 import *  # noqa: F401,F403
    from .._base_.runtime import *  # noqa: F401,F403
    from .._base_.schedules.llava_v15 import *  # noqa: F401,F403

from mmengine.dataset import DefaultSampler, pseudo_collate
from mmengine.runner import TestLoop

from llmvision.datasets.ref_vlm_json import RefVLMJsonDataset
from llmvision.datasets.shikra_rec import ShikraRECDataset
from llmvision.evaluation.ref_parse_metric import RefParseMetric
from llmvision.evaluation.refexp_metric import RefExpMetric
from llmvision.models.llm.conversation import ConversationEncoder
from llmvision.models.lmm.ref_vlm.box_decoder import RefBoxDecoder
from llmvision.models.lmm.ref_vlm.model import REFVLMModel
from llmvision.models.lmm.ref_vlm.tokens import load_ref_vlm_tokenizer

llm_path = 'checkpoints/vicuna-7b-v1.5'
image_size = 336
model.llm.pretrained_model_name_or_path = llm_path  # noqa: F405
model.update(  # noqa: F405
    type=REFVLMModel, tokenizer=llm_path, stop_strings=['</s>'], max_new_tokens=256,
    visual_features=dict(use_convnext=True, use_vit=True, out_indices=(0, 1, 2), frozen=True,
                         convnext=dict(model_name='convnext_large'),
                         checkpoint='checkpoints/clip_convnext_large/convnext_timm.pth'),
    decoders=dict(box=dict(type=RefBoxDecoder, embed_dims=256, num_layers=6, num_heads=8, ffn_dim=2048,
                           num_queries=100)),
    loss_weights=dict(llm=1.0, box=0.5))
optim_wrapper.optimizer.update(lr=2e-6)  # noqa: F405

encoder = dict(type=ConversationEncoder, tokenizer=dict(type=load_ref_vlm_tokenizer, path_or_cfg=llm_path),
               template='vicuna_v1', max_length=max_length, image_length=576)  # noqa: F405
train_dataloader = dict(
    batch_size=16, num_workers=4, sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=RefVLMJsonDataset, data_root='data/', ann_file='ref_vlm/train.json',
                 data_prefix=dict(img='coco/train2014/'), image_size=image_size, image_aspect='pad',
                 encoder=encoder))
test_dataloader = dict(
    batch_size=8, num_workers=2, sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=ShikraRECDataset, data_root='data/', ann_file='shikra/REC_refcoco_unc_val.jsonl',
                 data_prefix=dict(img='coco/train2014/'), image_size=image_size, image_aspect='pad',
                 encoder=encoder, split='val', test_mode=True))
test_evaluator = [dict(type=RefExpMetric, topk=(1,), iou_thr=0.5, iou_mode='>'), dict(type=RefParseMetric)]
test_cfg = dict(type=TestLoop)
load_from = 'work_dirs/llava_v15_vicuna_7b_finetune/epoch_1.pth'
