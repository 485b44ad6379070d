"""A tiny randomly initialised Grounding-DINO (CPU tests, smoke runs, benchmarks' small mode).

Same architecture as Swin-T scaled down: Swin 24-d, BERT 32-d built from ``bert_config`` with a
local vocabulary (``tokenizer`` folder with vocab.txt, e.g. from
``llmvision.models.language.write_bert_vocab``), d_model 64, 2 + 2 layers, 50 queries.
"""
from llmvision.models.backbones import ChannelMapperNeck, SwinBackbone
from llmvision.models.data_preprocessors import DetDataPreprocessor
from llmvision.models.detectors import GroundingDINO
from llmvision.models.language import BertTextEncoder

tokenizer_path = 'data/synthetic/bert_tokenizer'
embed_dims = 64

model = dict(
    type=GroundingDINO,
    data_preprocessor=dict(type=DetDataPreprocessor, bgr_to_rgb=True),
    backbone=dict(type=SwinBackbone, embed_dims=24, depths=(1, 1, 2, 1), num_heads=(1, 2, 3, 4),
                  window_size=7, drop_path_rate=0.0, out_indices=(1, 2, 3)),
    neck=dict(type=ChannelMapperNeck, in_channels=(48, 96, 192), out_channels=embed_dims,
              num_extra_levels=1, num_groups=32),
    text_encoder=dict(type=BertTextEncoder, tokenizer=tokenizer_path,
                      bert_config=dict(vocab_size=1100, hidden_size=32, num_hidden_layers=2,
                                       num_attention_heads=2, intermediate_size=64,
                                       max_position_embeddings=256)),
    embed_dims=embed_dims,
    num_queries=50,
    encoder=dict(num_layers=2, num_heads=4, ffn_dim=128, text_num_heads=2, text_ffn_dim=64,
                 fusion_embed_dim=64, fusion_num_heads=2, fusion_dropout=0.0),
    decoder=dict(num_layers=2, num_heads=4, text_num_heads=4, ffn_dim=128),
    dn_cfg=dict(label_noise_scale=0.5, box_noise_scale=1.0,
                group_cfg=dict(dynamic=True, num_groups=None, num_dn_queries=20)),
    test_cfg=dict(max_per_img=100, chunked_size=40))
