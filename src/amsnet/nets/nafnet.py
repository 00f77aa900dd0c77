"""NAFNet's "Baseline" network: the U-shaped backbone the AMSNet paper calls NAFNet.

Paper: L. Chen, X. Chu, X. Zhang and J. Sun, "Simple Baselines for Image Restoration",
ECCV 2022: their *Baseline* (layer norm, depthwise convolution, GELU and channel attention),
not the SimpleGate network the paper names NAFNet. Used as a denoiser by X. Liao et al.,
"Asymmetric Mask Scheme for Self-Supervised Real Image Denoising" (AMSNet), ECCV 2024.

Reference implementations: https://github.com/megvii-research/NAFNet (MIT licence) and the
class ``NAFNetBase`` of https://github.com/lll143653/amsnet (``codes/arches/NAFNetBase.py``,
MIT licence), which the released AMSNet NAFNet checkpoint was trained with.

Weight layout: the modules here correspond one to one with ``NAFNetBase``; the state-dict keys
are the official ones except inside the channel attention, whose ``nn.Sequential`` indices
``se.1`` / ``se.3`` are named ``se.reduce`` / ``se.expand`` here (the rule list is
``OFFICIAL_RENAMES`` in ``tests/unit/test_net_nafnet.py``). Parameter shapes are identical,
so the official AMSNet checkpoint loads after that renaming.

The code is written fresh from the paper and the layer list of the reference; it differs in
one visible way: sizes that are not a multiple of ``2 ** levels`` are padded by reflection
(the package-wide rule) where the reference pads with zeros, so border pixels of such images
differ slightly from the reference output.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial

import torch
import torch.nn.functional as F
from torch import nn

from amsnet import native
from amsnet.errors import ConfigError
from amsnet.nets.layers import ChannelLayerNorm, REDUCED_PRECISION_MIN_WIDTH
from amsnet.nets.registry import register_net
from amsnet.ops.fused_conv import conv_gelu, conv_pixel_shuffle, conv_scaled_residual
from amsnet.ops.padding import crop, pad_to_multiple

# The reference's LayerNorm2d adds this to the variance.
_NORM_EPS = 1e-6


class ChannelAttention(nn.Module):
    """Squeeze-and-excitation channel attention of the Baseline block.

    Global average pooling, a 1x1 convolution to half the channels, ReLU, a 1x1 convolution
    back, and a sigmoid give one weight in ``(0, 1)`` per channel and image.

    Args:
        channels: number of channels C (at least 2).

    Shape:
        input ``(B, C, H, W)``; output ``(B, C, 1, 1)``, the weights (not the weighted input).
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        hidden = channels // 2
        self.reduce = nn.Conv2d(channels, hidden, kernel_size=1)
        self.expand = nn.Conv2d(hidden, channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # The 1x1 convolutions act on a 1x1 map, i.e. they are matrix products; F.linear on
        # the flattened weights gives the same numbers with a fraction of a convolution's
        # per-call overhead, which dominates here (measured about 4x on CPU). The modules stay
        # Conv2d so that the parameters keep the official shapes.
        pooled = x.mean(dim=(-2, -1))
        hidden = F.relu(F.linear(pooled, self.reduce.weight.flatten(1), self.reduce.bias))
        weights = F.linear(hidden, self.expand.weight.flatten(1), self.expand.bias)
        return torch.sigmoid(weights)[:, :, None, None]


class BaselineBlock(nn.Module):
    """The Baseline block: an attention half and a feed-forward half, each a scaled residual.

    First half: layer norm, 1x1 convolution to ``dw_expand * C`` channels, 3x3 depthwise
    convolution, GELU, channel attention, 1x1 convolution back to C, dropout, then added to the
    input after multiplication by the learned per-channel scale ``beta``. Second half: layer
    norm, 1x1 convolution to ``ffn_expand * C``, GELU, 1x1 convolution back, dropout, added with
    the scale ``gamma``. Both scales start at zero, so a fresh block is the identity.

    Args:
        channels: number of channels C.
        dw_expand: channel expansion of the depthwise (attention) half.
        ffn_expand: channel expansion of the feed-forward half.
        dropout: dropout probability after each half (0 disables it, as in the paper).

    Shape:
        input and output ``(B, C, H, W)``.
    """

    def __init__(
        self, channels: int, *, dw_expand: int = 1, ffn_expand: int = 2, dropout: float = 0.0
    ) -> None:
        super().__init__()
        dw_channels = channels * dw_expand
        ffn_channels = channels * ffn_expand
        # Shape (1, C, 1, 1), not (C,), so that the official parameters load unchanged.
        self.beta = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, channels, 1, 1))
        self.norm1 = ChannelLayerNorm(channels, bias=True, eps=_NORM_EPS)
        self.conv1 = nn.Conv2d(channels, dw_channels, kernel_size=1)
        self.conv2 = nn.Conv2d(
            dw_channels, dw_channels, kernel_size=3, padding=1, groups=dw_channels
        )
        self.se = ChannelAttention(dw_channels)
        self.conv3 = nn.Conv2d(dw_channels, channels, kernel_size=1)
        self.norm2 = ChannelLayerNorm(channels, bias=True, eps=_NORM_EPS)
        self.conv4 = nn.Conv2d(channels, ffn_channels, kernel_size=1)
        self.conv5 = nn.Conv2d(ffn_channels, channels, kernel_size=1)
        self.dropout1 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()
        self.dropout2 = nn.Dropout(dropout) if dropout > 0 else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.training:
            return self._inference(x)
        branch = F.gelu(self.conv2(self.conv1(self.norm1(x))))
        branch = self.dropout1(self.conv3(branch * self.se(branch)))
        # addcmul computes x + branch * beta in one pass instead of two.
        x = torch.addcmul(x, branch, self.beta)
        branch = self.conv5(F.gelu(self.conv4(self.norm2(x))))
        return torch.addcmul(x, self.dropout2(branch), self.gamma)

    def _inference(self, x: torch.Tensor) -> torch.Tensor:
        """The same function without dropout, with GELU and the scaled residuals inside the
        convolutions where oneDNN can fuse them (:mod:`amsnet.ops.fused_conv`: 4% less time
        for the small preset on a CPU)."""
        branch = conv_gelu(self.conv1(self.norm1(x)), self.conv2)
        x = conv_scaled_residual(branch, self.conv3, x, self.beta, input_scale=self.se(branch))
        branch = conv_gelu(self.norm2(x), self.conv4)
        return conv_scaled_residual(branch, self.conv5, x, self.gamma)


def _stage(
    channels: int, num_blocks: int, *, dw_expand: int, ffn_expand: int, dropout: float
) -> nn.Sequential:
    return nn.Sequential(
        *(
            BaselineBlock(channels, dw_expand=dw_expand, ffn_expand=ffn_expand, dropout=dropout)
            for _ in range(num_blocks)
        )
    )


@register_net(
    "nafnet",
    presets={
        "paper": {},
        "small": {
            "width": 8,
            "encoder_blocks": (1, 1, 1, 1),
            "middle_blocks": 2,
            "decoder_blocks": (1, 1, 1, 1),
        },
    },
)
class NAFNet(nn.Module):
    """NAFNet-Baseline U-Net (Chen et al., ECCV 2022), the AMSNet paper's "NAFNet" denoiser.

    A 3x3 convolution lifts the image to ``width`` channels. Each encoder level runs its
    Baseline blocks, keeps the result as a skip, and halves the resolution with a 2x2
    stride-2 convolution that doubles the channels. After the middle blocks, each decoder level
    doubles the resolution with a bias-free 1x1 convolution and a pixel shuffle (halving the
    channels), adds the matching skip, and runs its blocks. A 3x3 convolution maps back to the
    image channels and the input is added (global residual). The defaults are the AMSNet
    configuration (``nafnet.yaml``, 29,056,227 parameters).

    Args:
        in_channels: image channels (the output has the same number).
        width: channels of the first level; level ``i`` has ``width * 2**i``.
        encoder_blocks: Baseline blocks per encoder level, from full resolution down.
        middle_blocks: Baseline blocks at the lowest resolution.
        decoder_blocks: Baseline blocks per decoder level, from low resolution up; as many
            levels as ``encoder_blocks``.
        dw_expand: channel expansion of each block's depthwise half.
        ffn_expand: channel expansion of each block's feed-forward half.
        dropout: dropout probability inside the blocks (0 in the paper).

    Raises:
        ConfigError: the encoder and decoder have different numbers of levels, or a
            non-positive size is given.

    Example:
        >>> net = NAFNet(width=4, encoder_blocks=(1,), middle_blocks=1, decoder_blocks=(1,))
        >>> net(torch.rand(1, 3, 5, 7)).shape
        torch.Size([1, 3, 5, 7])
    """

    size_multiple: int = 16
    blind_spot: bool = False

    def __init__(
        self,
        in_channels: int = 3,
        width: int = 32,
        encoder_blocks: Sequence[int] = (2, 2, 4, 8),
        middle_blocks: int = 12,
        decoder_blocks: Sequence[int] = (2, 2, 2, 2),
        *,
        dw_expand: int = 1,
        ffn_expand: int = 2,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        if len(encoder_blocks) != len(decoder_blocks):
            raise ConfigError(
                f"NAFNet needs as many decoder levels as encoder levels; got encoder_blocks="
                f"{tuple(encoder_blocks)} and decoder_blocks={tuple(decoder_blocks)}"
            )
        if min(in_channels, width, dw_expand, ffn_expand) < 1 or width * dw_expand < 2:
            raise ConfigError(
                "NAFNet needs in_channels, width, dw_expand and ffn_expand >= 1 and "
                f"width * dw_expand >= 2; got in_channels={in_channels}, width={width}, "
                f"dw_expand={dw_expand}, ffn_expand={ffn_expand}"
            )
        self.width = width
        stage = partial(_stage, dw_expand=dw_expand, ffn_expand=ffn_expand, dropout=dropout)
        self.size_multiple = 2 ** len(encoder_blocks)

        self.intro = nn.Conv2d(in_channels, width, kernel_size=3, padding=1)
        self.ending = nn.Conv2d(width, in_channels, kernel_size=3, padding=1)
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        channels = width
        for num_blocks in encoder_blocks:
            self.encoders.append(stage(channels, num_blocks))
            self.downs.append(nn.Conv2d(channels, 2 * channels, kernel_size=2, stride=2))
            channels *= 2
        self.middle_blks = stage(channels, middle_blocks)
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for num_blocks in decoder_blocks:
            self.ups.append(
                nn.Sequential(
                    nn.Conv2d(channels, 2 * channels, kernel_size=1, bias=False),
                    nn.PixelShuffle(2),
                )
            )
            channels //= 2
            self.decoders.append(stage(channels, num_blocks))

    @property
    def reduced_precision_pays(self) -> bool:
        """Whether bfloat16 runs this network faster than float32 on a CPU (with native
        bfloat16). The paper width (32) always does. A narrow one (the small preset, width 8)
        does only with amsnet's bfloat16 layer norm in C: its time is in layer norms and
        element-wise chains, which autocast alone would run with a conversion before and after
        each (10-16% slower than float32); with the C norm and the bfloat16 fused convolutions
        AMSNet B at 512x512 ran 1.34x faster and the shipped student 1.36x (2 cores, AMD EPYC
        with AVX512-BF16, 2026-12-08; docs/precision.md)."""
        if self.width >= REDUCED_PRECISION_MIN_WIDTH:
            return True
        return native.library() is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise a batch.

        Args:
            x: noisy images ``(B, in_channels, H, W)``, nominally in ``[0, 1]``; any H, W >= 1.

        Returns:
            The denoised estimate, ``(B, in_channels, H, W)``, not clamped.
        """
        padded, padding = pad_to_multiple(x, self.size_multiple, mode="reflect")
        features = self.intro(padded)
        skips = []
        for encoder, down in zip(self.encoders, self.downs, strict=True):
            features = encoder(features)
            skips.append(features)
            features = down(features)
        features = self.middle_blks(features)
        for decoder, up, skip in zip(self.decoders, self.ups, reversed(skips), strict=True):
            # up = 1x1 convolution + pixel shuffle; at inference on a CPU one transposed
            # convolution (amsnet.ops.fused_conv.conv_pixel_shuffle).
            upsampled = up(features) if self.training else conv_pixel_shuffle(features, up[0], 2)
            features = decoder(upsampled + skip)
        return crop(self.ending(features) + padded, padding)
