"""Grounding-DINO Swin-L (LLMDet-L / MM-GDINO-L): Swin-L, all 4 stages + 1 extra = 5 levels."""
from mmengine.config import read_base

with read_base():
    from .grounding_dino_swin_t import *  # noqa: F401,F403

from llmvision.models.backbones import ChannelMapperNeck, SwinBackbone

num_levels = 5
model['backbone'] = dict(type=SwinBackbone, embed_dims=192, depths=(2, 2, 18, 2),
                         num_heads=(6, 12, 24, 48), window_size=12, pretrain_img_size=384,
                         mlp_ratio=4, drop_path_rate=0.3, out_indices=(0, 1, 2, 3), with_cp=True)
model['neck'] = dict(type=ChannelMapperNeck, in_channels=(192, 384, 768, 1536), out_channels=256,
                     num_extra_levels=1, num_groups=32)
model['num_feature_levels'] = num_levels
model['encoder']['num_levels'] = num_levels
model['decoder']['num_levels'] = num_levels
