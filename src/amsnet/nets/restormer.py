"""Restormer: the transformer backbone AMSNet reports its best results with.

Paper: Syed Waqas Zamir, Aditya Arora, Salman Khan, Munawar Hayat, Fahad Shahbaz Khan and
Ming-Hsuan Yang, "Restormer: Efficient Transformer for High-Resolution Image Restoration",
CVPR 2022 (arXiv:2111.09881).

Reference implementation: https://github.com/swz30/Restormer (``restormer_arch.py``), copied
unchanged into the official AMSNet code (https://github.com/lll143653/amsnet,
``codes/arches/Restormer.py``). That code is under the Academic Public License, which allows
non-commercial use only. This file is a fresh implementation written from the paper; it shares
no text with the reference code. Only facts were taken from it (layer order, channel counts,
the 1e-5 of its layer norms, and the attribute names that make up the state-dict keys).

Weight layout: one module here for every module of the official ``Restormer`` class, so the
released AMSNet(Restormer) checkpoint loads after renaming keys (three renames, see
``tests/unit/test_net_restormer.py::OFFICIAL_RENAMES``): ``patch_embed.proj`` is the plain conv
``patch_embed``, ``normN.body`` is ``normN`` and the resizers' ``body.0`` is ``conv``. The
released Restormer and AMSNet(Restormer) weights come with the reference code's Academic
Public License: whoever loads them must respect it (non-commercial use only).

Differences from the reference, none of which changes the result beyond float rounding for
the sizes the reference accepts:
inputs of any size are padded by reflection to a multiple of 8 and cropped back (the reference
needs multiples of 8); the layer norm works on ``(B, C, H, W)`` directly instead of permuting
to ``(B, HW, C)``; the L2 normalisation of queries and keys is applied to the small
``C/heads x C/heads`` score matrix instead of to the full query and key maps (the same value,
see :class:`TransposedAttention`); the dual-pixel defocus-deblurring variant is not included.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from amsnet.errors import ConfigError
from amsnet.nets.layers import ChannelLayerNorm, REDUCED_PRECISION_MIN_WIDTH
from amsnet.nets.registry import register_net
from amsnet.ops.fused_conv import conv_gelu
from amsnet.ops.padding import crop, pad_to_multiple

NORM_EPS = 1e-5  # added to the variance by both of the official layer-norm variants
_NORMALIZE_EPS = 1e-12  # the smallest norm F.normalize divides by


class TransposedAttention(nn.Module):
    """Multi-Dconv head transposed attention (MDTA): attention across channels, not pixels.

    Queries, keys and values come from a 1x1 conv followed by a 3x3 depthwise conv. Each head
    holds ``C/heads`` channels; its attention map is ``C/heads x C/heads`` (the cosine
    similarity of query and key channels over all pixels, times a learned per-head
    temperature, soft-maxed over keys), so the cost grows linearly with the number of pixels.

    Dividing the ``C/heads x C/heads`` scores by the product of the query and key norms gives
    exactly the scores of L2-normalised queries and keys, without writing normalised copies
    of two full-size maps.

    Args:
        channels: C.
        heads: number of heads; must divide C.
        bias: give the convs a bias.

    Shape:
        input and output ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, heads: int, *, bias: bool) -> None:
        super().__init__()
        if channels % heads:
            raise ConfigError(f"Restormer: {heads} heads do not divide {channels} channels")
        self.heads = heads
        self.temperature = nn.Parameter(torch.ones(heads, 1, 1))
        self.qkv = nn.Conv2d(channels, 3 * channels, kernel_size=1, bias=bias)
        self.qkv_dwconv = nn.Conv2d(
            3 * channels, 3 * channels, 3, padding=1, groups=3 * channels, bias=bias
        )
        self.project_out = nn.Conv2d(channels, channels, kernel_size=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        batch, channels, height, width = x.shape
        qkv = self.qkv_dwconv(self.qkv(x))
        # (B, 3, heads, C/heads, HW) is a view of both contiguous and channels_last maps.
        query, key, value = qkv.reshape(
            batch, 3, self.heads, channels // self.heads, height * width
        ).unbind(1)
        query_norm = torch.linalg.vector_norm(query, dim=-1).clamp_min(_NORMALIZE_EPS)
        key_norm = torch.linalg.vector_norm(key, dim=-1).clamp_min(_NORMALIZE_EPS)
        scale = self.temperature / (query_norm.unsqueeze(-1) * key_norm.unsqueeze(-2))
        attention = torch.softmax(torch.matmul(query, key.transpose(-2, -1)) * scale, dim=-1)
        if qkv.stride(1) == 1 and height * width > 1:
            # channels_last input: multiply pixel-major so that the result is already
            # channels_last (a pure view for one head, the common case at full resolution).
            out = torch.matmul(value.transpose(-2, -1), attention.transpose(-2, -1))
            out = out.transpose(1, 2).reshape(batch, height, width, channels).permute(0, 3, 1, 2)
        else:
            out = torch.matmul(attention, value).reshape(batch, channels, height, width)
        return self.project_out(out)


class GatedFeedForward(nn.Module):
    """Gated-Dconv feed-forward network (GDFN).

    A 1x1 conv expands to two maps of ``hidden = int(C * expansion)`` channels, a 3x3
    depthwise conv mixes neighbours, GELU of the first map gates the second, and a 1x1 conv
    returns to C channels.

    Args:
        channels: C.
        expansion: hidden-width factor (2.66 in the paper).
        bias: give the convs a bias.

    Shape:
        input and output ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, expansion: float, *, bias: bool) -> None:
        super().__init__()
        hidden = int(channels * expansion)
        self.hidden = hidden
        self.project_in = nn.Conv2d(channels, 2 * hidden, kernel_size=1, bias=bias)
        self.dwconv = nn.Conv2d(2 * hidden, 2 * hidden, 3, padding=1, groups=2 * hidden, bias=bias)
        self.project_out = nn.Conv2d(hidden, channels, kernel_size=1, bias=bias)

    def _half(self, x: torch.Tensor, half: int) -> torch.Tensor:
        """The gate (``half=0``) or content (``half=1``) map: the 1x1 expansion and the
        depthwise conv restricted to that half of their output channels.

        Computing each half on its own is exactly ``dwconv(project_in(x)).chunk(2)`` (both
        convs are per output channel), but each half comes out dense. A channel slice of a
        channels-last map is strided, and GELU on one runs 3-4x slower than on a dense map
        (8x255x128x128 on two cores: about 50 ms against 12 ms).
        """
        channels = slice(half * self.hidden, (half + 1) * self.hidden)

        def part(tensor: torch.Tensor | None) -> torch.Tensor | None:
            return None if tensor is None else tensor[channels]

        expanded = F.conv2d(x, self.project_in.weight[channels], part(self.project_in.bias))
        return F.conv2d(
            expanded,
            self.dwconv.weight[channels],
            part(self.dwconv.bias),
            padding=1,
            groups=self.hidden,
        )

    def _gate(self, x: torch.Tensor) -> torch.Tensor:
        """``F.gelu(self._half(x, 0))``; at inference on a CPU the depthwise convolution and
        the GELU run as one oneDNN kernel (:func:`amsnet.ops.fused_conv.conv_gelu`), which
        saves the separate GELU pass over the widest map of the block, and under bfloat16
        autocast the conversions around it (paper preset, 2 cores: GELU was 13% of the
        bfloat16 time, docs/precision.md)."""
        gate = slice(0, self.hidden)
        weight = self.project_in.weight[gate]
        bias = self.project_in.bias[gate] if self.project_in.bias is not None else None
        return conv_gelu(F.conv2d(x, weight, bias), self.dwconv, channels=gate)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gated = self._gate(x)
        content = self._half(x, 1)
        if torch.is_grad_enabled():
            gated = gated * content  # autograd needs the GELU output kept for the product
        else:
            gated.mul_(content)  # one full-size map fewer to allocate and write
        return self.project_out(gated)


class TransformerBlock(nn.Module):
    """Pre-norm residual block: ``x + MDTA(norm(x))``, then ``x + GDFN(norm(x))``.

    Args:
        channels: C.
        heads: attention heads; must divide C.
        expansion: GDFN hidden-width factor.
        bias: give the convs a bias.
        norm_bias: "WithBias" layer norm (centred, with a bias) instead of "BiasFree".

    Shape:
        input and output ``(B, C, H, W)``.
    """

    def __init__(
        self, channels: int, heads: int, expansion: float, *, bias: bool, norm_bias: bool
    ) -> None:
        super().__init__()
        self.norm1 = ChannelLayerNorm(channels, bias=norm_bias, eps=NORM_EPS)
        self.attn = TransposedAttention(channels, heads, bias=bias)
        self.norm2 = ChannelLayerNorm(channels, bias=norm_bias, eps=NORM_EPS)
        self.ffn = GatedFeedForward(channels, expansion, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In-place residual sums: the branches end in a conv, whose backward needs its input
        # and weight but not its output, so autograd is unaffected and no new map is written.
        x = self.attn(self.norm1(x)).add_(x)
        return self.ffn(self.norm2(x)).add_(x)


class Downsample(nn.Module):
    """Halve the resolution and double the channels: 3x3 conv to C/2, then pixel-unshuffle by 2.

    Shape:
        input ``(B, C, H, W)`` with even H and W; output ``(B, 2C, H/2, W/2)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels // 2, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_unshuffle(self.conv(x), 2)


class Upsample(nn.Module):
    """Double the resolution and halve the channels: 3x3 conv to 2C, then pixel-shuffle by 2.

    Shape:
        input ``(B, C, H, W)``; output ``(B, C/2, 2H, 2W)``.
    """

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, 2 * channels, 3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.pixel_shuffle(self.conv(x), 2)


def _stage(
    count: int, channels: int, heads: int, expansion: float, *, bias: bool, norm_bias: bool
) -> nn.Sequential:
    return nn.Sequential(
        *(
            TransformerBlock(channels, heads, expansion, bias=bias, norm_bias=norm_bias)
            for _ in range(count)
        )
    )


@register_net(
    "restormer",
    presets={
        "paper": {},
        # Heads as in the paper: 12 channels per head at every encoder level (paper: 48).
        "small": {"width": 12, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1},
    },
)
class Restormer(nn.Module):
    """Restormer: a 4-level U-shaped encoder-decoder of MDTA + GDFN transformer blocks.

    A 3x3 conv embeds the image into ``width`` channels. Each encoder level runs its
    transformer blocks and then halves the resolution while doubling the channels (levels of
    ``width``, ``2*width``, ``4*width``, ``8*width`` channels; the last is the latent level).
    Each decoder level doubles the resolution, concatenates the encoder features of that
    level and, at levels 3 and 2, reduces the channels back with a 1x1 conv; level 1 keeps the
    concatenated ``2*width`` channels for its blocks and for the refinement blocks. A 3x3 conv
    maps to the output, and the input is added (global residual).

    The defaults are the AMSNet paper configuration (``configs/restormer.yaml``: the Restormer
    paper's network with the "BiasFree" layer norm): 26,111,668 parameters.

    Args:
        in_channels: image channels in.
        out_channels: image channels out; must equal ``in_channels`` (global residual).
        width: channels of level 1 (the paper's ``dim``); must be even.
        num_blocks: transformer blocks at levels 1 to 4; the decoder reuses the counts of
            levels 1 to 3.
        num_refinement_blocks: transformer blocks after decoder level 1.
        heads: attention heads at levels 1 to 4 (decoder level 1 and the refinement use
            ``heads[0]``); ``heads[i]`` must divide the channels of level ``i + 1``.
        ffn_expansion: GDFN hidden-width factor (hidden = ``int(channels * ffn_expansion)``).
        bias: give the transformer blocks' convs, the 1x1 reductions and the output conv a
            bias (the patch embedding and the resizing convs never have one).
        norm_bias: use the "WithBias" layer norm instead of "BiasFree".

    Shape:
        input ``(B, in_channels, H, W)`` float, any H, W >= 1, nominally in [0, 1];
        output ``(B, out_channels, H, W)``, not clamped.

    Example:
        >>> net = Restormer(width=8, num_blocks=(1, 1, 1, 1), num_refinement_blocks=1)
        >>> tuple(net(torch.rand(1, 3, 33, 47)).shape)
        (1, 3, 33, 47)
    """

    size_multiple = 8  # three 2x down-samplings
    blind_spot = False
    reduced_precision_pays = True

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        width: int = 48,
        num_blocks: tuple[int, int, int, int] = (4, 6, 6, 8),
        num_refinement_blocks: int = 4,
        heads: tuple[int, int, int, int] = (1, 2, 4, 8),
        ffn_expansion: float = 2.66,
        bias: bool = False,
        norm_bias: bool = False,
    ) -> None:
        super().__init__()
        if in_channels != out_channels:
            raise ConfigError(
                f"Restormer adds its input to its output, so out_channels ({out_channels}) "
                f"must equal in_channels ({in_channels})"
            )
        if width < 2 or width % 2:
            raise ConfigError(f"Restormer width must be a positive even number, got {width}")
        # Measured on a 2-core AMX CPU (docs/precision.md): bfloat16 autocast runs the paper
        # width (48) 1.6x faster and the small width (12) no faster, its time being in layer
        # norms and element-wise chains; amsnet.precision keeps narrow ones in fp32 on a CPU.
        self.reduced_precision_pays = width >= REDUCED_PRECISION_MIN_WIDTH
        if len(num_blocks) != 4 or len(heads) != 4:
            raise ConfigError(
                "Restormer needs four num_blocks and four heads (one per level), got "
                f"num_blocks={tuple(num_blocks)} and heads={tuple(heads)}"
            )
        options = {"bias": bias, "norm_bias": norm_bias}
        w1, w2, w3, w4 = width, 2 * width, 4 * width, 8 * width

        self.patch_embed = nn.Conv2d(in_channels, w1, 3, padding=1, bias=False)
        self.encoder_level1 = _stage(num_blocks[0], w1, heads[0], ffn_expansion, **options)
        self.down1_2 = Downsample(w1)
        self.encoder_level2 = _stage(num_blocks[1], w2, heads[1], ffn_expansion, **options)
        self.down2_3 = Downsample(w2)
        self.encoder_level3 = _stage(num_blocks[2], w3, heads[2], ffn_expansion, **options)
        self.down3_4 = Downsample(w3)
        self.latent = _stage(num_blocks[3], w4, heads[3], ffn_expansion, **options)

        self.up4_3 = Upsample(w4)
        self.reduce_chan_level3 = nn.Conv2d(w4, w3, kernel_size=1, bias=bias)
        self.decoder_level3 = _stage(num_blocks[2], w3, heads[2], ffn_expansion, **options)
        self.up3_2 = Upsample(w3)
        self.reduce_chan_level2 = nn.Conv2d(w3, w2, kernel_size=1, bias=bias)
        self.decoder_level2 = _stage(num_blocks[1], w2, heads[1], ffn_expansion, **options)
        self.up2_1 = Upsample(w2)
        # Level 1 has no reduction: its blocks run on the concatenated 2*width channels.
        self.decoder_level1 = _stage(num_blocks[0], w2, heads[0], ffn_expansion, **options)
        self.refinement = _stage(num_refinement_blocks, w2, heads[0], ffn_expansion, **options)
        self.output = nn.Conv2d(w2, out_channels, 3, padding=1, bias=bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, C, H, W)``; returns the same shape."""
        padded, padding = pad_to_multiple(x, self.size_multiple, mode="reflect")
        level1 = self.encoder_level1(self.patch_embed(padded))
        level2 = self.encoder_level2(self.down1_2(level1))
        level3 = self.encoder_level3(self.down2_3(level2))
        y = self.latent(self.down3_4(level3))
        y = self.reduce_chan_level3(torch.cat((self.up4_3(y), level3), dim=1))
        y = self.decoder_level3(y)
        y = self.reduce_chan_level2(torch.cat((self.up3_2(y), level2), dim=1))
        y = self.decoder_level2(y)
        y = self.decoder_level1(torch.cat((self.up2_1(y), level1), dim=1))
        y = self.output(self.refinement(y)) + padded
        return crop(y, padding)
