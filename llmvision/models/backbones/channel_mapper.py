"""Channel mapper neck: per-level conv + GroupNorm to a common width, plus stride-2 extra levels.

Same computation as mmdet ``ChannelMapper`` (``act_cfg=None``, GN, ``bias=True``) and HF Grounding-DINO's
``input_proj_vision``. Parameter names (as mmdet): ``convs.{i}.{conv,gn}``, ``extra_convs.{j}.{conv,gn}``.
"""
import torch.nn as nn

from llmvision.registry import MODELS


class ConvGN(nn.Module):
    """``Conv2d`` (with bias) followed by ``GroupNorm``; no activation."""

    def __init__(self, in_channels, out_channels, kernel_size, stride, num_groups):
        super().__init__()
        self.conv = nn.Conv2d(in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2)
        self.gn = nn.GroupNorm(num_groups, out_channels)

    def forward(self, x):
        return self.gn(self.conv(x))


@MODELS.register_module()
class ChannelMapperNeck(nn.Module):
    """Map backbone maps to ``out_channels`` and add ``num_extra_levels`` coarser levels.

    Args:
        in_channels: channels of each input map (e.g. ``(192, 384, 768)`` for Swin-T stages 2-4).
        out_channels: common width (256).
        num_extra_levels: extra stride-2 3x3 conv + GN levels; the first reads the last INPUT map, the
            next ones the previous extra level.
        num_groups: GroupNorm groups.
        kernel_size: kernel of the per-level convs (1).

    ``forward(tuple of [B, in_i, H_i, W_i])`` -> tuple of ``len(in_channels) + num_extra_levels`` maps
    ``[B, out_channels, H, W]``.
    """

    def __init__(self, in_channels=(192, 384, 768), out_channels=256, num_extra_levels=1, num_groups=32,
                 kernel_size=1):
        super().__init__()
        self.in_channels = tuple(in_channels)
        self.out_channels = out_channels
        self.convs = nn.ModuleList([ConvGN(c, out_channels, kernel_size, 1, num_groups) for c in self.in_channels])
        self.extra_convs = nn.ModuleList([
            ConvGN(self.in_channels[-1] if i == 0 else out_channels, out_channels, 3, 2, num_groups)
            for i in range(num_extra_levels)])
        self.init_weights()

    def init_weights(self):
        """Xavier-uniform conv weights, zero biases, unit GroupNorm (as Grounding-DINO's input projection)."""
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, nn.GroupNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, inputs):
        if len(inputs) != len(self.convs):
            raise ValueError(f'ChannelMapperNeck expects {len(self.convs)} maps, got {len(inputs)}')
        outs = [conv(x) for conv, x in zip(self.convs, inputs)]
        for i, conv in enumerate(self.extra_convs):
            outs.append(conv(inputs[-1] if i == 0 else outs[-1]))
        return tuple(outs)
