"""Backbones and necks: Swin Transformer and the channel-mapper neck, plus checkpoint key converters."""
from .channel_mapper import ChannelMapperNeck
from .swin import SwinBackbone

__all__ = ['SwinBackbone', 'ChannelMapperNeck']
