"""DBSNl: AP-BSN's dilated blind-spot network (the output at a pixel never sees that pixel).

Paper: W. Lee, S. Son and K. M. Lee, "AP-BSN: Self-Supervised Denoising for Real-World Images
via Asymmetric PD and Blind-Spot Network", CVPR 2022 (a light version of the dilated blind-spot
network of X. Wu et al., "Unpaired Learning of Deep Image Denoising", ECCV 2020). AMSNet
(X. Liao et al., ECCV 2024) uses the same network as its AP-BSN baseline and in its ablation of
supplement section 1.8.

Reference implementation: https://github.com/wooseoklee4/AP-BSN (``src/model/DBSNl.py``, MIT
licence); the AMSNet repository https://github.com/lll143653/amsnet carries a copy in
``codes/arches/APBSN.py``.

Weight layout: module names are those of the reference ``DBSNl`` (``head.0``, ``branch1.body.*``,
``branch2.body.*``, ``tail.*``), so the denoiser weights of the official AP-BSN ``.pth``
checkpoints load after stripping the wrapper's ``bsn.`` prefix. The one difference: the
reference stores the centre mask of each masked convolution as a state-dict buffer
(``branch1.body.0.mask``, ``branch2.body.0.mask``); here the mask is not part of the state dict
(it is rebuilt from the shape), so a converter drops those two keys. The code is written fresh
for this package.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from amsnet.errors import ConfigError
from amsnet.nets.registry import register_net

# The two branches' strides: kernel 2s - 1 for the masked convolution, dilation s afterwards.
BRANCH_STRIDES = (2, 3)


@register_net("dbsnl", presets={"paper": {}, "small": {"width": 32}})
class DBSNl(nn.Module):
    """AP-BSN's DBSNl: a pointwise head, two dilated blind-spot branches, a pointwise tail.

    Head: 1x1 convolution to ``width`` features and ReLU. Each branch, with stride
    ``s`` in (2, 3): a ``(2s-1) x (2s-1)`` convolution whose centre tap is masked out, ReLU, two
    1x1 convolutions each with ReLU, ``num_blocks`` residual blocks (3x3 convolution with
    dilation ``s``, ReLU, 1x1 convolution, added to the block input), a 1x1 convolution and
    ReLU. Tail: the two branches concatenated (``2 * width``), then 1x1 convolutions to
    ``width``, ``width // 2``, ``width // 2`` (each with ReLU) and ``out_channels``.

    Why it is blind: each offset the masked convolution sees has coordinates within
    ``s - 1`` of zero and is not ``(0, 0)``, so at least one coordinate is not a multiple of
    ``s``; the dilated convolutions only add multiples of ``s`` and everything else is 1x1, so
    no path leads from an input pixel to the output at the same position. The centre tap is
    multiplied by a fixed zero mask in every forward pass, so it stays out of the computation
    whatever value the stored weight holds (training, weight decay or loaded weights included).

    ``blind_spot=False`` builds the unrestricted variant of AMSNet supplement section 1.8
    ("replace the dilated convolution with an equivalent regular convolution ... and remove the
    restriction on the receptive field"): the centre tap is used and the 3x3 convolutions of
    the residual blocks have dilation 1 (padding 1). The parameter count is unchanged. The
    exact replacement used in the paper is not published; this is our interpretation.

    No down-sampling happens, so any input size works.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output.
        width: features of the head and of each branch (AP-BSN's ``base_ch``); must be even.
        num_blocks: residual dilated blocks per branch (AP-BSN's ``num_module``).
        blind_spot: keep the blind spot (True, AP-BSN) or build the unrestricted variant.

    Shape:
        input ``(B, in_channels, H, W)`` float, nominally in ``[0, 1]``; output
        ``(B, out_channels, H, W)`` (not clamped).
    """

    size_multiple: int = 1
    blind_spot: bool = True

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        width: int = 128,
        num_blocks: int = 9,
        blind_spot: bool = True,
    ) -> None:
        super().__init__()
        if width % 2:
            raise ConfigError(f"width must be even (the tail halves it); got {width}")
        self.blind_spot = blind_spot
        self.head = nn.Sequential(nn.Conv2d(in_channels, width, 1), nn.ReLU(inplace=True))
        first, second = BRANCH_STRIDES
        self.branch1 = DilatedBranch(first, width, num_blocks, blind_spot=blind_spot)
        self.branch2 = DilatedBranch(second, width, num_blocks, blind_spot=blind_spot)
        half = width // 2
        self.tail = nn.Sequential(
            nn.Conv2d(2 * width, width, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(width, half, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, half, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(half, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, C, H, W)``; returns ``(B, out_channels, H, W)``."""
        features = self.head(x)
        return self.tail(torch.cat((self.branch1(features), self.branch2(features)), dim=1))


class DilatedBranch(nn.Module):
    """One DBSNl branch (AP-BSN's ``DC_branchl``); ``body`` keeps the reference's indices.

    Args:
        stride: ``s``; the masked kernel is ``2s - 1`` wide and the blocks dilate by ``s``.
        channels: features in and out.
        num_blocks: residual dilated blocks.
        blind_spot: mask the centre tap and dilate (True) or neither (False).

    Shape:
        ``(B, channels, H, W)`` in and out.
    """

    def __init__(self, stride: int, channels: int, num_blocks: int, *, blind_spot: bool) -> None:
        super().__init__()
        kernel = 2 * stride - 1
        dilation = stride if blind_spot else 1
        layers: list[nn.Module] = [
            CentreMaskedConv2d(channels, channels, kernel, padding=stride - 1, masked=blind_spot),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
            nn.ReLU(inplace=True),
        ]
        layers += [DilatedResidualBlock(channels, dilation) for _ in range(num_blocks)]
        layers += [nn.Conv2d(channels, channels, 1), nn.ReLU(inplace=True)]
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class DilatedResidualBlock(nn.Module):
    """``x + conv1x1(relu(dilated conv3x3(x)))`` (AP-BSN's ``DCl``).

    Args:
        channels: features in and out.
        dilation: dilation (and padding) of the 3x3 convolution.

    Shape:
        ``(B, channels, H, W)`` in and out.
    """

    def __init__(self, channels: int, dilation: int) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, channels, 3, padding=dilation, dilation=dilation),
            nn.ReLU(inplace=True),
            nn.Conv2d(channels, channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x)


class CentreMaskedConv2d(nn.Conv2d):
    """A square, odd-sized convolution that ignores the input pixel under its centre tap.

    The weight is multiplied by a fixed mask (zero at the centre of every kernel) inside
    ``forward``, so the centre tap never contributes and receives a zero gradient. The mask is
    a non-persistent buffer: it follows ``.to()`` but is not in the state dict. The stored
    centre weights are also zeroed at construction so that saved weights look like the
    reference's.

    Args:
        in_channels: input features.
        out_channels: output features.
        kernel_size: odd kernel width and height.
        padding: zero padding on every side.
        masked: apply the mask; False makes this an ordinary convolution.

    Shape:
        ``(B, in_channels, H, W)`` to ``(B, out_channels, H', W')`` as for ``nn.Conv2d``.
    """

    def __init__(
        self,
        in_channels: int,
        out_channels: int,
        kernel_size: int,
        *,
        padding: int = 0,
        masked: bool = True,
    ) -> None:
        if kernel_size % 2 == 0:
            raise ConfigError(f"a centre tap needs an odd kernel size; got {kernel_size}")
        super().__init__(in_channels, out_channels, kernel_size, padding=padding)
        self.masked = masked
        mask = torch.ones(kernel_size, kernel_size)
        mask[kernel_size // 2, kernel_size // 2] = 0.0
        # (k, k) broadcasts over the (out, in, k, k) weight without a full-size copy.
        self.register_buffer("mask", mask, persistent=False)
        if masked:
            with torch.no_grad():
                self.weight.mul_(mask)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        weight = self.weight * self.mask if self.masked else self.weight
        return F.conv2d(x, weight, self.bias, padding=self.padding)
