"""DnCNN: a plain stack of 3x3 convolutions that predicts the noise and subtracts it.

Paper: K. Zhang, W. Zuo, Y. Chen, D. Meng and L. Zhang, "Beyond a Gaussian Denoiser: Residual
Learning of Deep CNN for Image Denoising", IEEE Transactions on Image Processing 26(7), 2017.

Reference implementation: KAIR, https://github.com/cszn/KAIR (``models/network_dncnn.py``,
MIT licence); the AMSNet repository (https://github.com/lll143653/amsnet,
``codes/arches/DNCNN.py``, MIT licence) carries a KAIR-style copy.

Weight layout: the state-dict keys are those of KAIR's flattened ``nn.Sequential`` named
``model`` (``model.0.weight``, ``model.3.running_mean``, ..., ``model.47.bias``), so KAIR and
AMSNet DnCNN weights load without renaming. The code is written fresh for this package.
"""

from __future__ import annotations

import torch
from torch import nn

from amsnet.errors import ConfigError
from amsnet.nets.registry import register_net

# KAIR's batch-norm settings. PyTorch's momentum weighs the *new* batch statistic, so 0.9 makes
# the running statistics follow the last batches closely (KAIR's choice, kept for weight and
# behaviour compatibility).
BATCH_NORM_MOMENTUM = 0.9
BATCH_NORM_EPS = 1e-4


@register_net("dncnn", presets={"paper": {}, "small": {"width": 40}})
class DnCNN(nn.Module):
    """Colour DnCNN-17 with batch normalisation and residual (noise) learning.

    ``depth`` counts the convolutions: a 3x3 convolution + ReLU head, ``depth - 2`` blocks of
    3x3 convolution + batch norm + ReLU, and a 3x3 convolution tail that predicts the noise;
    the output is ``input - predicted noise``. Every convolution has a bias and zero padding 1,
    so any input size works and nothing is down-sampled.

    The AMSNet supplement (Table 1) lists 5.898M parameters for AMSNet(DnCNN); no released
    configuration matches that number (the supplement's own 0.115 GFLOPs at 160x160 does not
    fit it either), so this module uses the standard colour DnCNN-17 (64 features, 17
    convolutions; 559,363 parameters) instead.

    Args:
        in_channels: channels of the input image.
        out_channels: channels of the output; must equal ``in_channels`` because of the
            residual subtraction.
        width: features of every hidden convolution.
        depth: total number of convolutions (>= 2).

    Shape:
        input ``(B, in_channels, H, W)`` float, nominally in ``[0, 1]``; output the same shape
        (not clamped).
    """

    size_multiple: int = 1
    blind_spot: bool = False

    def __init__(
        self,
        in_channels: int = 3,
        out_channels: int = 3,
        *,
        width: int = 64,
        depth: int = 17,
    ) -> None:
        super().__init__()
        if out_channels != in_channels:
            raise ConfigError(
                f"DnCNN subtracts its output from its input, so out_channels ({out_channels}) "
                f"must equal in_channels ({in_channels})"
            )
        if depth < 2:
            raise ConfigError(f"depth counts the head and tail convolutions; got {depth} < 2")
        # One flat Sequential keeps KAIR's indices: head conv 0, ReLU 1, then conv/BN/ReLU
        # triples from index 2, tail conv last.
        layers: list[nn.Module] = [_conv3x3(in_channels, width), nn.ReLU(inplace=True)]
        for _ in range(depth - 2):
            layers += [
                _conv3x3(width, width),
                nn.BatchNorm2d(width, eps=BATCH_NORM_EPS, momentum=BATCH_NORM_MOMENTUM),
                nn.ReLU(inplace=True),
            ]
        layers.append(_conv3x3(width, out_channels))
        self.model = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Denoise ``x`` of shape ``(B, C, H, W)``; returns the same shape."""
        return x - self.model(x)


def _conv3x3(in_channels: int, out_channels: int) -> nn.Conv2d:
    return nn.Conv2d(in_channels, out_channels, kernel_size=3, padding=1, bias=True)
