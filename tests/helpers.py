"""Shared test helpers (import as ``from helpers import ...``; pytest puts ``tests/`` on the path).

- Tiny on-disk dataset files: :func:`write_image` (flat grey, each box painted in its ``PALETTE``
  colour so a test can check that boxes still sit on their colour after any transform),
  :func:`write_jsonl`, :func:`grounding_record` (an ODVG grounding line).
- A tiny Grounding-DINO (Swin 24-d, BERT 32-d, d_model 64, 2 + 2 layers, 50 queries):
  :func:`our_tiny_model`, its vocabulary ``WORDS``, a real image :func:`astronaut` and
  :func:`sample` (a ``DetDataSample`` with a prompt).
- Evaluation: :func:`to_samples` (result-format dicts -> ``DetDataSample`` predictions).
"""
import json
from collections import defaultdict

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from mmengine.structures import InstanceData

from llmvision.structures import DetDataSample

# ------------------------------------------------------------------ tiny dataset files
PALETTE = [(255, 0, 0), (0, 255, 0), (0, 0, 255), (255, 255, 0), (255, 0, 255), (0, 255, 255)]


def write_image(path, height, width, boxes=()):
    """Write a ``height x width`` BGR png with box ``k`` (pixel xyxy) filled with ``PALETTE[k]``."""
    img = np.full((height, width, 3), 128, np.uint8)
    for k, (x1, y1, x2, y2) in enumerate(boxes):
        img[int(y1):int(y2), int(x1):int(x2)] = PALETTE[k % len(PALETTE)]
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)
    return img


def write_jsonl(path, records):
    """Write ``records`` (dicts, or raw strings written as they are) one per line."""
    with open(path, 'w') as f:
        for r in records:
            f.write((r if isinstance(r, str) else json.dumps(r)) + '\n')
    return str(path)


def grounding_record(filename, height, width, caption, regions, long_caption=None):
    """An ODVG grounding line; ``regions`` = [(bbox or [bboxes], phrase, spans)]."""
    rec = dict(filename=filename, height=height, width=width,
               grounding=dict(caption=caption,
                              regions=[dict(bbox=b, phrase=p, tokens_positive=s) for b, p, s in regions]))
    if long_caption is not None:
        rec['conversations'] = [dict(value='<image>\nDescribe the image in detail.', **{'from': 'human'}),
                                dict(value=long_caption, **{'from': 'gpt'})]
    return rec


# ------------------------------------------------------------------ tiny Grounding-DINO
WORDS = ['a', 'woman', 'person', 'face', 'hair', 'rocket', 'space', 'suit', 'flag', 'the', 'with',
         'red', 'white', 'dog', 'cat', 'remote', 'control', 'in', 'of', 'and']
D_MODEL, BERT_HIDDEN, QUERIES, LAYERS = 64, 32, 50, 2


def our_tiny_model(vocab_dir, **overrides):
    """A tiny :class:`GroundingDINO` (the HF-parity convention: ``position_convention='hf'``)."""
    from llmvision.models.backbones import ChannelMapperNeck, SwinBackbone
    from llmvision.models.detectors import GroundingDINO
    from llmvision.models.language import BertTextEncoder
    cfg = dict(
        backbone=SwinBackbone(embed_dims=24, depths=(1, 1, 2, 1), num_heads=(1, 2, 3, 4), window_size=7,
                              drop_path_rate=0.0, out_indices=(1, 2, 3)),
        neck=ChannelMapperNeck(in_channels=(48, 96, 192), out_channels=D_MODEL, num_extra_levels=1),
        text_encoder=BertTextEncoder(
            bert_config=dict(vocab_size=1100, hidden_size=BERT_HIDDEN, num_hidden_layers=2,
                             num_attention_heads=2, intermediate_size=64, max_position_embeddings=64),
            tokenizer=vocab_dir, position_convention='hf'),
        embed_dims=D_MODEL, num_queries=QUERIES,
        encoder=dict(num_layers=LAYERS, num_heads=4, ffn_dim=128, text_num_heads=2, text_ffn_dim=64,
                     fusion_embed_dim=64, fusion_num_heads=2, fusion_dropout=0.0),
        decoder=dict(num_layers=LAYERS, num_heads=4, text_num_heads=4, ffn_dim=128, refine_eps=1e-5))
    cfg.update(overrides)
    return GroundingDINO(**cfg)


def astronaut(hw):
    """skimage's astronaut resized to ``hw``, normalized: ``[1, 3, H, W]`` float."""
    from skimage.data import astronaut as load
    img = torch.from_numpy(np.ascontiguousarray(load())).permute(2, 0, 1).float()[None]
    img = F.interpolate(img, size=hw, mode='bilinear', align_corners=False)
    mean = torch.tensor([123.675, 116.28, 103.53]).view(1, 3, 1, 1)
    std = torch.tensor([58.395, 57.12, 57.375]).view(1, 3, 1, 1)
    return (img - mean) / std


def sample(text, img_shape, batch_shape, **meta):
    """A ``DetDataSample`` with prompt ``text`` and empty ``gt_instances``."""
    meta = dict(dict(ori_shape=img_shape), **meta)
    s = DetDataSample(metainfo=dict(text=text, img_shape=img_shape, batch_input_shape=batch_shape,
                                    **meta))
    s.gt_instances = InstanceData()
    return s


# ------------------------------------------------------------------ evaluation
def to_samples(dataset, results):
    """Result-format dicts -> DetDataSamples (labels index the sorted category ids)."""
    cat_ids = sorted(c['id'] for c in dataset['categories'])
    by_img = defaultdict(list)
    for r in results:
        by_img[r['image_id']].append(r)
    samples = []
    for im in dataset['images']:
        rs = by_img[im['id']]
        s = DetDataSample(metainfo=dict(img_id=im['id'], ori_shape=(im['height'], im['width'])))
        p = InstanceData()
        b = torch.tensor([r['bbox'] for r in rs], dtype=torch.float64).reshape(-1, 4)
        p.bboxes = torch.cat([b[:, :2], b[:, :2] + b[:, 2:]], 1)
        p.scores = torch.tensor([r['score'] for r in rs], dtype=torch.float64)
        p.labels = torch.tensor([cat_ids.index(r['category_id']) for r in rs], dtype=torch.long)
        s.pred_instances = p
        samples.append(s)
    return samples


# ------------------------------------------------------------------ tiny LLM captioner
def build_captioner(tokenizer, seed=0, **overrides):
    """A tiny ``LLMCaptioner`` (random Qwen2 + LoRA) seeded for the tests."""
    from llmvision.models.captioners import tiny_captioner_cfg
    from llmvision.registry import MODELS
    torch.manual_seed(seed)
    return MODELS.build(tiny_captioner_cfg(tokenizer, **overrides))


def captioner_inputs(batch=2, regions=(3, 2), seed=1, grad=False):
    """Random encoder maps, region queries / boxes, captions and phrases for a captioner batch."""
    g = torch.Generator().manual_seed(seed)
    memory = [torch.randn(batch, 256, s, s, generator=g).requires_grad_(grad) for s in (16, 8, 4, 2)]
    queries = [torch.randn(k, 256, generator=g).requires_grad_(grad) for k in regions]
    boxes = [(torch.rand(k, 4, generator=g) * 0.5 + 0.2).requires_grad_(grad) for k in regions]
    phrases = [[f'{c} circle' for c in ('red', 'blue', 'green', 'purple', 'orange', 'yellow')[:k]]
               for k in regions]
    captions = ['a red circle and a blue square on a photo of a street.', 'two green triangles.'][:batch]
    return memory, queries, boxes, captions, phrases


def randomize_lora_b(cap, std=0.2):
    """LoRA B factors drawn at random so an adapter is not the identity."""
    g = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, p in cap.named_parameters():
            if 'lora_B' in name:
                p.copy_(torch.randn(p.shape, generator=g) * std)
