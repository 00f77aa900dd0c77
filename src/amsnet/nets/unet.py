"""The five-level U-Net that AMSNet uses as its "Unet" denoiser.

Paper: T. Huang, S. Li, X. Jia, H. Lu and J. Liu, "Neighbor2Neighbor: Self-Supervised Denoising
from Single Noisy Images", CVPR 2021 (the network itself follows the U-Net of Laine et al.,
"High-Quality Self-Supervised Deep Image Denoising", NeurIPS 2019). Used as a plug-in denoiser
in X. Liao et al., "Asymmetric Mask Scheme for Self-Supervised Real Image Denoising"
(AMSNet), ECCV 2024.

Reference implementation: https://github.com/TaoHuang2018/Neighbor2Neighbor (``arch_unet.py``,
BSD-3-Clause licence), copied unchanged into the AMSNet repository
https://github.com/lll143653/amsnet (``codes/arches/Unet.py``, MIT licence).

Weight layout: module names are those of the reference ``UNet`` (``enc_conv0``..``enc_conv6``,
``up5.deconv``..``up1.deconv``, ``dec_conv5a``..``dec_conv1b``, ``nin_a``/``nin_b``/``nin_c``),
so the denoiser weights inside the official AMSNet Unet checkpoint load without renaming. The
code is written fresh for this package.
"""

from __future__ import annotations

import torch
from torch import nn

from amsnet.nets.registry import register_net
from amsnet.ops.padding import crop, pad_to_multiple

NEGATIVE_SLOPE = 0.2
# The reference draws every (transposed) convolution from Kaiming-normal (fan-in, gain of a
# plain ReLU) and scales it by 0.1, with zero biases; training from scratch starts from there.
INIT_SCALE = 0.1


@register_net("unet", presets={"paper": {}, "small": {"width": 24, "output_width": 32}})
class UNet(nn.Module):
    """U-Net with five 2x max-pool levels, transposed-convolution up-sampling and skip concats.

    Encoder: two 3x3 convolutions at full resolution, then one 3x3 convolution after each of
    five max-pools (``width`` features throughout). Decoder: at each of the five levels a 2x2
    stride-2 transposed convolution, concatenation with the encoder feature of that resolution
    (the input image itself at full resolution), and two 3x3 convolutions (``2 * width``
    features); then three 1x1 convolutions (``output_width`` features, then ``out_channels``).
    Every convolution but the last is followed by LeakyReLU(0.2). There is no global residual.

    Only the reference's ordinary configuration (``blindspot=False``) is implemented; its
    blind-spot mode (rotated copies with upward-shifted convolutions) is not, so
    ``blind_spot`` is False. The reference hard-codes ``output_width`` to 96; it is an
    argument here only so the small preset can shrink it.

    Inputs of any size work: they are reflect-padded at the bottom and right to a multiple of
    32 (five halvings) and the output is cropped back.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output.
        width: encoder features (the reference's ``n_feature``); the decoder uses twice this.
        output_width: features of the output stage (``dec_conv1a``, ``dec_conv1b``, ``nin_a``,
            ``nin_b``).

    Shape:
        input ``(B, in_channels, H, W)`` float, nominally in ``[0, 1]``; output
        ``(B, out_channels, H, W)`` (not clamped).
    """

    size_multiple: int = 32
    blind_spot: bool = False

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        width: int = 128,
        output_width: int = 96,
    ) -> None:
        super().__init__()
        self.act = nn.LeakyReLU(negative_slope=NEGATIVE_SLOPE, inplace=True)
        self.pool = nn.MaxPool2d(kernel_size=2)

        self.enc_conv0 = _conv(in_channels, width)
        self.enc_conv1 = _conv(width, width)
        self.enc_conv2 = _conv(width, width)
        self.enc_conv3 = _conv(width, width)
        self.enc_conv4 = _conv(width, width)
        self.enc_conv5 = _conv(width, width)
        self.enc_conv6 = _conv(width, width)

        decoder = 2 * width
        self.up5 = UpsampleConcat(width, width)
        self.dec_conv5a = _conv(2 * width, decoder)
        self.dec_conv5b = _conv(decoder, decoder)
        self.up4 = UpsampleConcat(decoder, decoder)
        self.dec_conv4a = _conv(decoder + width, decoder)
        self.dec_conv4b = _conv(decoder, decoder)
        self.up3 = UpsampleConcat(decoder, decoder)
        self.dec_conv3a = _conv(decoder + width, decoder)
        self.dec_conv3b = _conv(decoder, decoder)
        self.up2 = UpsampleConcat(decoder, decoder)
        self.dec_conv2a = _conv(decoder + width, decoder)
        self.dec_conv2b = _conv(decoder, decoder)
        self.up1 = UpsampleConcat(decoder, decoder)

        self.dec_conv1a = _conv(decoder + in_channels, output_width)
        self.dec_conv1b = _conv(output_width, output_width)
        self.nin_a = _conv(output_width, output_width, kernel_size=1)
        self.nin_b = _conv(output_width, output_width, kernel_size=1)
        self.nin_c = _conv(output_width, out_channels, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, C, H, W)``; returns ``(B, out_channels, H, W)``."""
        x, padding = pad_to_multiple(x, self.size_multiple, mode="reflect")
        act = self.act

        skip0 = x
        y = act(self.enc_conv1(act(self.enc_conv0(x))))
        skip1 = y = self.pool(y)
        skip2 = y = self.pool(act(self.enc_conv2(y)))
        skip3 = y = self.pool(act(self.enc_conv3(y)))
        skip4 = y = self.pool(act(self.enc_conv4(y)))
        y = self.pool(act(self.enc_conv5(y)))
        y = act(self.enc_conv6(y))

        y = act(self.dec_conv5b(act(self.dec_conv5a(self.up5(y, skip4)))))
        y = act(self.dec_conv4b(act(self.dec_conv4a(self.up4(y, skip3)))))
        y = act(self.dec_conv3b(act(self.dec_conv3a(self.up3(y, skip2)))))
        y = act(self.dec_conv2b(act(self.dec_conv2a(self.up2(y, skip1)))))
        y = self.up1(y, skip0)

        y = act(self.dec_conv1b(act(self.dec_conv1a(y))))
        y = act(self.nin_b(act(self.nin_a(y))))
        return crop(self.nin_c(y), padding)


class UpsampleConcat(nn.Module):
    """Double the resolution with a 2x2 stride-2 transposed convolution, then concatenate a skip.

    Args:
        in_channels: channels of the coarse feature.
        out_channels: channels after up-sampling (the skip's channels are added on top).

    Shape:
        ``coarse (B, in_channels, H, W)`` and ``skip (B, S, 2H, 2W)`` give
        ``(B, out_channels + S, 2H, 2W)``.
    """

    def __init__(self, in_channels: int, out_channels: int) -> None:
        super().__init__()
        self.deconv = nn.ConvTranspose2d(in_channels, out_channels, kernel_size=2, stride=2)
        _scaled_kaiming_(self.deconv)

    def forward(self, coarse: torch.Tensor, skip: torch.Tensor) -> torch.Tensor:
        return torch.cat((self.deconv(coarse), skip), dim=1)


def _conv(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    conv = nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)
    _scaled_kaiming_(conv)
    return conv


@torch.no_grad()
def _scaled_kaiming_(module: nn.Conv2d | nn.ConvTranspose2d) -> None:
    nn.init.kaiming_normal_(module.weight, a=0.0, mode="fan_in")
    module.weight.mul_(INIT_SCALE)
    if module.bias is not None:
        module.bias.zero_()
