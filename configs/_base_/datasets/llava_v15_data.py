"""LLaVA-1.5 training data (local copies; nothing is downloaded), shared by the configs/llava/ recipes.

``train_dataloader`` is the fine-tuning set: ``data/llava/llava_v1_5_mix665k.json`` with its images under
``data/llava/`` (``coco/train2017/``, ``gqa/images/``, ``ocr_vqa/images/``, ``textvqa/train_images/``,
``vg/VG_100K/``, ``vg/VG_100K_2/``; 40K text-only ShareGPT records have no image), images padded to a square
with the CLIP mean colour. ``pretrain_data`` holds what the pre-training stage changes: the 558K LAION/CC/SBU
captions ``data/llava/LLaVA-Pretrain/blip_laion_cc_sbu_558k.json`` + ``LLaVA-Pretrain/images/``, images resized
(the original stage used CLIP's resize + centre crop). The conversation encoder's tokenizer and chat template are
set by the leaf config. Bad records are logged and counted, not fatal.
"""
from mmengine.dataset import DefaultSampler, pseudo_collate

from llmvision.datasets.llava_json import LLaVAJsonDataset
from llmvision.models.llm.conversation import ConversationEncoder

data_root = 'data/llava'
image_size = 336
image_tokens = (image_size // 14) ** 2  # 576 visual tokens per image (counted in max_length)

train_dataloader = dict(
    batch_size=16,
    num_workers=4,
    persistent_workers=True,
    sampler=dict(type=DefaultSampler, shuffle=True),
    collate_fn=dict(type=pseudo_collate),
    dataset=dict(
        type=LLaVAJsonDataset,
        data_root=data_root,
        ann_file='llava_v1_5_mix665k.json',
        data_prefix=dict(img=''),
        image_size=image_size,
        image_aspect='pad',
        encoder=dict(type=ConversationEncoder, tokenizer=None, template=None, max_length=2048,
                     image_length=image_tokens),
        on_bad_sample='skip'))

pretrain_data = dict(ann_file='LLaVA-Pretrain/blip_laion_cc_sbu_558k.json',
                     data_prefix=dict(img='LLaVA-Pretrain/images'), image_aspect='resize')
