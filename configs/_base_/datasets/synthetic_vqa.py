"""Synthetic VQA set (``data/synthetic_vqa/vqa/{train,val}.json``, LLaVA conversation json, one question per
record): train / val / test dataloaders and the VQA accuracy metric with its text-only prior.

Data: ``python tools/make_synthetic_dataset.py --out data/synthetic_vqa --num-train 8000 --num-val 300
--image-size 64 64 --categories uniform --backgrounds plain gradient --max-objects 4`` (64x64 scenes, 0-4
shapes of 8-28 px; uniform categories so the question text alone cannot answer). Prompts are chatml without a
system turn (short); the encoder's tokenizer is the set's own ``llm_tokenizer/``.
``val_dataloader.dataset.image_ablation='noise'`` replaces every image by noise (the "does the image matter"
check).
"""
from mmengine.dataset import DefaultSampler, pseudo_collate

from llmvision.datasets.llava_json import LLaVAJsonDataset
from llmvision.evaluation.vqa_metric import VQAAccuracyMetric
from llmvision.models.llm.conversation import ConversationEncoder

data_root = 'data/synthetic_vqa/'
image_size = 64
vqa_encoder = dict(type=ConversationEncoder, tokenizer=data_root + 'llm_tokenizer', template='chatml', system='',
                   max_length=256)

train_dataloader = dict(
    batch_size=32,
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=LLaVAJsonDataset, data_root=data_root, ann_file='vqa/train.json',
                 data_prefix=dict(img='images/'), image_size=image_size, image_aspect='pad',
                 encoder=vqa_encoder))
val_dataloader = dict(
    batch_size=64,
    num_workers=0,
    sampler=dict(type=DefaultSampler, shuffle=False),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(type=LLaVAJsonDataset, data_root=data_root, ann_file='vqa/val.json',
                 data_prefix=dict(img='images/'), image_size=image_size, image_aspect='pad',
                 encoder=vqa_encoder, test_mode=True, image_ablation=None))
test_dataloader = val_dataloader
val_evaluator = dict(type=VQAAccuracyMetric, train_ann_file=data_root + 'vqa/train.json')
test_evaluator = val_evaluator
