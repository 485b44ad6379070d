"""Grounding-DINO Swin-B (LLMDet-B): Swin-B (embed 128, window 12) on the Swin-T model."""
from mmengine.config import read_base

with read_base():
    from .grounding_dino_swin_t import *  # noqa: F401,F403

from llmvision.models.backbones import ChannelMapperNeck, SwinBackbone

model['backbone'] = dict(type=SwinBackbone, embed_dims=128, depths=(2, 2, 18, 2),
                         num_heads=(4, 8, 16, 32), window_size=12, pretrain_img_size=384,
                         mlp_ratio=4, drop_path_rate=0.3, out_indices=(1, 2, 3), with_cp=True)
model['neck'] = dict(type=ChannelMapperNeck, in_channels=(256, 512, 1024), out_channels=256,
                     num_extra_levels=1, num_groups=32)
