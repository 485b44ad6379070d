"""Swin Transformer backbone (Liu et al. 2021) returning multi-scale feature maps for detection.

Reads top to bottom: patch embedding -> stages of (shifted-)window attention blocks, each stage but the
last ending in patch merging -> a LayerNorm on every returned stage output.

Numerics follow the original Swin / mmdet / HF ``SwinBackbone`` (``always_partition=True``): any input
size works; the image is padded right/bottom to a multiple of the patch size, every block pads its map
to a multiple of the window size (after ``norm1``, zeros), shifted windows use the -100 attention mask,
odd maps are padded before patch merging. Patch merging concatenates the 2x2 neighbours in the
original order ``[x(0,0), x(1,0), x(0,1), x(1,1)]`` (row, col) -- mmdet's unfold order differs and is
converted by :mod:`llmvision.models.backbones.convert`.

Parameter names (ours): ``patch_embed.{proj,norm}``, ``stages.{i}.blocks.{j}.{norm1, attn.qkv, attn.proj,
attn.relative_position_bias_table, norm2, mlp.fc1, mlp.fc2}``, ``stages.{i}.downsample.{norm,reduction}``,
``norm{i}`` for ``i`` in ``out_indices``.
"""
import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.checkpoint import checkpoint

from llmvision.registry import MODELS


def drop_path(x, drop_prob, training):
    """Stochastic depth per sample: ``x`` ``[B, ...]`` zeroed for a random subset, rescaled by 1/keep."""
    if drop_prob == 0.0 or not training:
        return x
    keep = 1.0 - drop_prob
    mask = x.new_empty((x.shape[0],) + (1,) * (x.dim() - 1)).bernoulli_(keep)
    return x * mask / keep


def window_partition(x, window_size):
    """``[B, H, W, C]`` (H, W multiples of the window) -> ``[B * nW, ws * ws, C]``."""
    batch, height, width, channels = x.shape
    x = x.view(batch, height // window_size, window_size, width // window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, window_size * window_size, channels)


def window_reverse(windows, window_size, height, width):
    """``[B * nW, ws * ws, C]`` -> ``[B, H, W, C]``."""
    channels = windows.shape[-1]
    x = windows.view(-1, height // window_size, width // window_size, window_size, window_size, channels)
    return x.permute(0, 1, 3, 2, 4, 5).reshape(-1, height, width, channels)


def relative_position_index(window_size):
    """``[ws*ws, ws*ws]`` long index into the ``[(2ws-1)^2, nH]`` bias table (original Swin layout)."""
    coords = torch.stack(torch.meshgrid(torch.arange(window_size), torch.arange(window_size), indexing='ij'))
    coords = coords.flatten(1)
    relative = (coords[:, :, None] - coords[:, None, :]).permute(1, 2, 0) + (window_size - 1)
    return relative[..., 0] * (2 * window_size - 1) + relative[..., 1]


def shifted_window_mask(height, width, window_size, shift_size, device):
    """Additive mask ``[nW, ws*ws, ws*ws]`` (0 within a region, -100 across) for a padded H x W map."""
    h_region = (torch.arange(height, device=device) >= height - window_size).long() + \
        (torch.arange(height, device=device) >= height - shift_size).long()
    w_region = (torch.arange(width, device=device) >= width - window_size).long() + \
        (torch.arange(width, device=device) >= width - shift_size).long()
    regions = (h_region[:, None] * 3 + w_region[None, :]).float()[None, :, :, None]
    regions = window_partition(regions, window_size).squeeze(-1)  # [nW, ws*ws]
    diff = regions[:, None, :] - regions[:, :, None]
    return torch.zeros_like(diff).masked_fill(diff != 0, -100.0)


class PatchEmbed(nn.Module):
    """Non-overlapping patches: ``[B, 3, H, W]`` -> tokens ``[B, H/p * W/p, C]`` (+ LayerNorm)."""

    def __init__(self, in_channels, embed_dims, patch_size):
        super().__init__()
        self.patch_size = patch_size
        self.proj = nn.Conv2d(in_channels, embed_dims, kernel_size=patch_size, stride=patch_size)
        self.norm = nn.LayerNorm(embed_dims)

    def forward(self, x):
        """Returns ``(tokens [B, Hp*Wp, C], (Hp, Wp))``; the image is zero-padded right/bottom."""
        pad_h = (-x.shape[-2]) % self.patch_size
        pad_w = (-x.shape[-1]) % self.patch_size
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h))
        x = self.proj(x)
        hw = x.shape[-2:]
        return self.norm(x.flatten(2).transpose(1, 2)), (int(hw[0]), int(hw[1]))


class WindowAttention(nn.Module):
    """Multi-head self-attention inside windows with a learned relative position bias."""

    def __init__(self, dim, num_heads, window_size, qkv_bias=True, attn_drop=0.0):
        super().__init__()
        self.num_heads = num_heads
        self.window_size = window_size
        self.attn_drop = attn_drop
        self.qkv = nn.Linear(dim, dim * 3, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.relative_position_bias_table = nn.Parameter(torch.zeros((2 * window_size - 1) ** 2, num_heads))
        self.register_buffer('relative_position_index', relative_position_index(window_size), persistent=False)

    def forward(self, x, mask=None):
        """``x`` ``[B*nW, N, C]``, ``mask`` ``[nW, N, N]`` additive or None -> ``[B*nW, N, C]``."""
        windows, tokens, channels = x.shape
        qkv = self.qkv(x).view(windows, tokens, 3, self.num_heads, -1).permute(2, 0, 3, 1, 4)
        bias = self.relative_position_bias_table[self.relative_position_index.view(-1)]
        bias = bias.view(tokens, tokens, -1).permute(2, 0, 1)[None].to(x.dtype)  # [1, nH, N, N]
        if mask is not None:
            num_windows = mask.shape[0]
            bias = (bias + mask[:, None].to(x.dtype)).repeat(windows // num_windows, 1, 1, 1)
        out = F.scaled_dot_product_attention(qkv[0], qkv[1], qkv[2], attn_mask=bias,
                                             dropout_p=self.attn_drop if self.training else 0.0)
        return self.proj(out.transpose(1, 2).reshape(windows, tokens, channels))


class Mlp(nn.Module):
    """``fc1 -> GELU -> fc2`` on ``[..., C]``."""

    def __init__(self, dim, hidden_dim):
        super().__init__()
        self.fc1 = nn.Linear(dim, hidden_dim)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_dim, dim)

    def forward(self, x):
        return self.fc2(self.act(self.fc1(x)))


class SwinBlock(nn.Module):
    """Pre-norm (shifted-)window attention + MLP, each with a residual and stochastic depth."""

    def __init__(self, dim, num_heads, window_size, shift_size, mlp_ratio, qkv_bias, drop_path_rate,
                 attn_drop=0.0):
        super().__init__()
        self.window_size = window_size
        self.shift_size = shift_size
        self.drop_path_rate = drop_path_rate
        self.norm1 = nn.LayerNorm(dim)
        self.attn = WindowAttention(dim, num_heads, window_size, qkv_bias, attn_drop)
        self.norm2 = nn.LayerNorm(dim)
        self.mlp = Mlp(dim, int(dim * mlp_ratio))

    def forward(self, x, hw, mask):
        """``x`` ``[B, H*W, C]``, ``hw`` ``(H, W)``, ``mask`` for the padded map or None -> ``[B, H*W, C]``."""
        batch, _, channels = x.shape
        height, width = hw
        ws = self.window_size
        y = self.norm1(x).view(batch, height, width, channels)
        pad_h, pad_w = (-height) % ws, (-width) % ws
        if pad_h or pad_w:
            y = F.pad(y, (0, 0, 0, pad_w, 0, pad_h))
        padded_h, padded_w = height + pad_h, width + pad_w
        if self.shift_size:
            y = torch.roll(y, shifts=(-self.shift_size, -self.shift_size), dims=(1, 2))
        y = self.attn(window_partition(y, ws), mask if self.shift_size else None)
        y = window_reverse(y, ws, padded_h, padded_w)
        if self.shift_size:
            y = torch.roll(y, shifts=(self.shift_size, self.shift_size), dims=(1, 2))
        y = y[:, :height, :width].reshape(batch, height * width, channels)
        x = x + drop_path(y, self.drop_path_rate, self.training)
        return x + drop_path(self.mlp(self.norm2(x)), self.drop_path_rate, self.training)


class PatchMerging(nn.Module):
    """2x downsampling: ``[B, H*W, C]`` -> ``[B, ceil(H/2)*ceil(W/2), 2C]`` (LayerNorm(4C) then Linear)."""

    def __init__(self, dim):
        super().__init__()
        self.norm = nn.LayerNorm(4 * dim)
        self.reduction = nn.Linear(4 * dim, 2 * dim, bias=False)

    def forward(self, x, hw):
        batch, _, channels = x.shape
        height, width = hw
        x = x.view(batch, height, width, channels)
        if height % 2 or width % 2:
            x = F.pad(x, (0, 0, 0, width % 2, 0, height % 2))
        x = torch.cat([x[:, 0::2, 0::2], x[:, 1::2, 0::2], x[:, 0::2, 1::2], x[:, 1::2, 1::2]], -1)
        new_hw = (x.shape[1], x.shape[2])
        return self.reduction(self.norm(x.view(batch, -1, 4 * channels))), new_hw


class SwinStage(nn.Module):
    """``depth`` blocks alternating regular / shifted windows, then optional patch merging."""

    def __init__(self, dim, depth, num_heads, window_size, mlp_ratio, qkv_bias, drop_path_rates, downsample,
                 attn_drop=0.0, with_cp=False):
        super().__init__()
        self.window_size = window_size
        self.shift_size = window_size // 2
        self.with_cp = with_cp
        self.blocks = nn.ModuleList([
            SwinBlock(dim, num_heads, window_size, 0 if i % 2 == 0 else self.shift_size, mlp_ratio, qkv_bias,
                      drop_path_rates[i], attn_drop) for i in range(depth)])
        self.downsample = PatchMerging(dim) if downsample else None

    def forward(self, x, hw):
        """Returns ``(next_x, next_hw, stage_out [B, H*W, C], hw)`` where ``stage_out`` is pre-merging."""
        ws = self.window_size
        mask = shifted_window_mask(hw[0] + (-hw[0]) % ws, hw[1] + (-hw[1]) % ws, ws, self.shift_size, x.device)
        for block in self.blocks:
            if self.with_cp and self.training and x.requires_grad:
                x = checkpoint(block, x, hw, mask, use_reentrant=False)
            else:
                x = block(x, hw, mask)
        if self.downsample is None:
            return x, hw, x, hw
        down, down_hw = self.downsample(x, hw)
        return down, down_hw, x, hw


@MODELS.register_module()
class SwinBackbone(nn.Module):
    """Swin Transformer for dense prediction.

    Args:
        embed_dims: channels ``C`` after patch embedding (stage ``i`` has ``C * 2**i``).
        depths / num_heads: blocks and heads per stage.
        window_size, mlp_ratio, qkv_bias: block settings.
        drop_path_rate: stochastic depth, linearly increasing over all blocks from 0.
        attn_drop_rate: dropout on attention probabilities.
        out_indices: stages whose (LayerNorm-ed, pre-merging) outputs are returned.
        patch_size: patch embedding stride.
        pretrain_img_size: image size of the absolute position embedding (only with ``use_abs_pos_embed``;
            resized bicubically to the input's patch grid).
        use_abs_pos_embed: add a learned absolute position embedding after patch embedding.
        frozen_stages: -1 none; ``k >= 0`` freezes patch embedding and stages ``< k`` (with their norms).
        with_cp: activation checkpointing per block while training.

    ``forward(x [B, 3, H, W])`` -> tuple of ``[B, C * 2**i, ceil(H / (p * 2**i)), ceil(W / (p * 2**i))]``.
    """

    def __init__(self, embed_dims=96, depths=(2, 2, 6, 2), num_heads=(3, 6, 12, 24), window_size=7, mlp_ratio=4,
                 drop_path_rate=0.2, out_indices=(1, 2, 3), patch_size=4, pretrain_img_size=224, with_cp=False,
                 qkv_bias=True, attn_drop_rate=0.0, use_abs_pos_embed=False, frozen_stages=-1, in_channels=3):
        super().__init__()
        if len(depths) != len(num_heads):
            raise ValueError(f'depths {depths} and num_heads {num_heads} must have the same length')
        if any(i < 0 or i >= len(depths) for i in out_indices):
            raise ValueError(f'out_indices {out_indices} must index the {len(depths)} stages')
        self.out_indices = tuple(out_indices)
        self.frozen_stages = frozen_stages
        self.patch_embed = PatchEmbed(in_channels, embed_dims, patch_size)
        if use_abs_pos_embed:
            grid = pretrain_img_size // patch_size
            self.absolute_pos_embed = nn.Parameter(torch.zeros(1, grid * grid, embed_dims))
        else:
            self.absolute_pos_embed = None
        rates = torch.linspace(0, drop_path_rate, sum(depths)).tolist()
        self.stages = nn.ModuleList()
        for i, (depth, heads) in enumerate(zip(depths, num_heads)):
            start = sum(depths[:i])
            self.stages.append(SwinStage(embed_dims * 2 ** i, depth, heads, window_size, mlp_ratio, qkv_bias,
                                         rates[start:start + depth], downsample=i < len(depths) - 1,
                                         attn_drop=attn_drop_rate, with_cp=with_cp))
        self.out_channels = tuple(embed_dims * 2 ** i for i in self.out_indices)
        for i in self.out_indices:
            self.add_module(f'norm{i}', nn.LayerNorm(embed_dims * 2 ** i))
        self.init_weights()
        self._freeze_stages()

    @torch.no_grad()
    def init_weights(self):
        """Truncated normal (std 0.02) for linear weights and bias tables, zero biases, unit LayerNorms."""
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=0.02)
                if module.bias is not None:
                    nn.init.zeros_(module.bias)
            elif isinstance(module, nn.LayerNorm):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)
            elif isinstance(module, WindowAttention):
                nn.init.trunc_normal_(module.relative_position_bias_table, std=0.02)
        if self.absolute_pos_embed is not None:
            nn.init.trunc_normal_(self.absolute_pos_embed, std=0.02)

    def _freeze_stages(self):
        if self.frozen_stages < 0:
            return
        frozen = [self.patch_embed] + list(self.stages[:self.frozen_stages])
        frozen += [getattr(self, f'norm{i}') for i in self.out_indices if i < self.frozen_stages]
        if self.absolute_pos_embed is not None:
            self.absolute_pos_embed.requires_grad_(False)
        for module in frozen:
            module.eval()
            for param in module.parameters():
                param.requires_grad_(False)

    def train(self, mode=True):
        super().train(mode)
        self._freeze_stages()
        return self

    def _add_abs_pos_embed(self, x, hw):
        pos = self.absolute_pos_embed
        grid = int(round(pos.shape[1] ** 0.5))
        if (grid, grid) != hw:
            pos = pos.view(1, grid, grid, -1).permute(0, 3, 1, 2)
            pos = F.interpolate(pos, size=hw, mode='bicubic', align_corners=False)
            pos = pos.flatten(2).transpose(1, 2)
        return x + pos

    def forward(self, x):
        """``x`` ``[B, 3, H, W]`` -> tuple of feature maps ``[B, C_i, H_i, W_i]`` for ``out_indices``."""
        if x.dim() != 4:
            raise ValueError(f'SwinBackbone expects images [B, C, H, W], got shape {tuple(x.shape)}')
        x, hw = self.patch_embed(x)
        if self.absolute_pos_embed is not None:
            x = self._add_abs_pos_embed(x, hw)
        outs = []
        for i, stage in enumerate(self.stages):
            x, next_hw, out, out_hw = stage(x, hw)
            if i in self.out_indices:
                out = getattr(self, f'norm{i}')(out)
                outs.append(out.view(out.shape[0], *out_hw, -1).permute(0, 3, 1, 2).contiguous())
            hw = next_hw
        return tuple(outs)
