"""Grounding-DINO Swin-T (MM-Grounding-DINO / LLMDet-T "tiny") model definition.

Model part only: the runtime / dataset / schedule parts live in ``configs/_base_`` and the
method configs that read this file. Values follow REFERENCE.md section 1. BERT comes from a local
folder (``checkpoints/bert-base-uncased``: config.json, vocab.txt, model weights); release weights
load with ``load_from`` after ``tools/convert_checkpoint.py``.
"""
from llmvision.models.backbones import ChannelMapperNeck, SwinBackbone
from llmvision.models.data_preprocessors import DetDataPreprocessor
from llmvision.models.detectors import GroundingDINO
from llmvision.models.language import BertTextEncoder

# ------------------------------------------------------------------ settings
bert_path = 'checkpoints/bert-base-uncased'
num_queries = 900
num_levels = 4

# ------------------------------------------------------------------ model
model = dict(
    type=GroundingDINO,
    data_preprocessor=dict(type=DetDataPreprocessor, bgr_to_rgb=True, pad_size_divisor=1),
    backbone=dict(type=SwinBackbone, embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24),
                  window_size=7, mlp_ratio=4, drop_path_rate=0.2, out_indices=(1, 2, 3),
                  with_cp=True),
    neck=dict(type=ChannelMapperNeck, in_channels=(192, 384, 768), out_channels=256,
              num_extra_levels=1, num_groups=32),
    text_encoder=dict(type=BertTextEncoder, name_or_path=bert_path, max_tokens=256,
                      pad_to_max=False, use_sub_sentence=True),
    embed_dims=256,
    num_queries=num_queries,
    num_feature_levels=num_levels,
    max_text_len=256,
    encoder=dict(num_layers=6, num_heads=8, num_levels=num_levels, num_points=4, ffn_dim=2048,
                 text_num_heads=4, text_ffn_dim=1024, fusion_embed_dim=1024, fusion_num_heads=4,
                 fusion_dropout=0.1, fusion_drop_path=0.0, fusion_init_values=1e-4, dropout=0.0,
                 num_cp=0),  # gradient checkpointing of the first N encoder layers (-1: all)
    decoder=dict(num_layers=6, num_heads=8, text_num_heads=8, num_levels=num_levels, num_points=4,
                 ffn_dim=2048, dropout=0.0, refine_eps=1e-3),
    contrastive=dict(log_scale='auto', bias=True),
    positional_encoding=dict(num_feats=128, temperature=20),
    dn_cfg=dict(label_noise_scale=0.5, box_noise_scale=1.0,
                group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=100)),
    loss_cfg=dict(matcher=dict(cls_weight=2.0, l1_weight=5.0, giou_weight=2.0),
                  loss_cls_weight=1.0, loss_bbox_weight=5.0, loss_iou_weight=2.0),
    test_cfg=dict(max_per_img=300, chunked_size=40))

# ------------------------------------------------------------------ optimizer (paramwise part)
# AdamW lr 1e-4, wd 1e-4, clip 0.1 (set in the schedule part); backbone and BERT at lr x 0.1,
# no weight decay on embeddings/norms of the transformer.
paramwise_cfg = dict(custom_keys={
    'backbone': dict(lr_mult=0.1),
    'text_encoder': dict(lr_mult=0.1),
    'absolute_pos_embed': dict(decay_mult=0.0),
    'relative_position_bias_table': dict(decay_mult=0.0),
    'level_embed': dict(decay_mult=0.0),
    'query_embedding': dict(decay_mult=0.0),
})
