"""DeamNet: the adaptive-consistency-prior unrolled denoiser the AMSNet paper uses as a backbone.

Paper: C. Ren, X. He, C. Wang and Z. Zhao, "Adaptive Consistency Prior based Deep Network for
Image Denoising", CVPR 2021 (oral), pp. 8596-8606. Used as a denoiser by
X. Liao et al., "Asymmetric Mask Scheme for Self-Supervised Real Image Denoising" (AMSNet),
ECCV 2024 (configuration ``Deam(Isreal=True)`` of its ``configs/deamnet.yaml``).

Reference implementations: https://github.com/chaoren88/DeamNet (``DeamNet.py``, MIT licence)
and its copy in https://github.com/lll143653/amsnet (``codes/model/DeamNet.py``, MIT licence),
which the released AMSNet DeamNet checkpoint was trained with.

Weight layout: every module here corresponds one to one with a module of the official ``Deam``
class, with the same parameter shapes; the official names (``line11``, ``net2``, ``C``,
``ConvTranspose``, ...) are replaced by descriptive ones and the single-convolution wrapper
levels (``.conv2d``, ``.block.0``) are dropped. The renaming table is
``tests/unit/test_net_deamnet.py::OFFICIAL_RENAMES``; after it the official state dict loads
with ``strict=True``.

The code is written fresh from the paper and the layer list of the reference. Behaviour that
differs from the reference: sizes that are not a multiple of 16 are padded by reflection and
cropped back (the reference requires a multiple of 16); the two convex combinations are
computed with ``torch.lerp`` (equal up to rounding); the nearest-neighbour up-sampling that the
reference computes twice per decoder level is computed once.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from amsnet.errors import ConfigError
from amsnet.nets.registry import register_net
from amsnet.ops.padding import crop, pad_to_multiple

# Four stride-2 encoder levels: the NLO sub-network halves the size four times.
_LEVELS = 4


class ConvReLU(nn.Conv2d):
    """A "same"-padded convolution followed by ReLU, as one module (so its keys stay flat).

    Args:
        in_channels: input channels.
        out_channels: output channels.
        kernel_size: odd kernel size.
        stride: 1, or 2 to halve the size (rounding up).

    Shape:
        input ``(B, in_channels, H, W)``; output ``(B, out_channels, ceil(H / stride),
        ceil(W / stride))``, non-negative.
    """

    def __init__(
        self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1
    ) -> None:
        super().__init__(
            in_channels, out_channels, kernel_size, stride=stride, padding=kernel_size // 2
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # In place is safe: the convolution's backward pass does not need its own output.
        return F.relu(super().forward(x), inplace=True)


def _conv(in_channels: int, out_channels: int, kernel_size: int = 3) -> nn.Conv2d:
    """A "same"-padded convolution without activation."""
    return nn.Conv2d(in_channels, out_channels, kernel_size, padding=kernel_size // 2)


def _gate(channels: int, reduction: int) -> nn.Sequential:
    """The per-pixel, per-channel weight map in ``(0, 1)`` shared by both kinds of DEAM gate.

    Indices 0 and 2 hold the convolutions, as in the reference (``conv_du``).
    """
    hidden = channels // reduction
    return nn.Sequential(
        _conv(channels, hidden), nn.ReLU(inplace=True), _conv(hidden, channels), nn.Sigmoid()
    )


class FeatureTransform(nn.Module):
    """Image to feature space: a 3x3 projection, then a residual conv-ReLU-conv refinement.

    Official name ``transform_function`` (``ext`` -> ``project``, ``pre`` -> ``refine``).

    Args:
        in_channels: image channels.
        width: feature channels.

    Shape:
        input ``(B, in_channels, H, W)``; output ``(B, width, H, W)``.
    """

    def __init__(self, in_channels: int, width: int) -> None:
        super().__init__()
        self.project = _conv(in_channels, width)
        self.refine = nn.Sequential(_conv(width, width), nn.ReLU(inplace=True), _conv(width, width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features = self.project(x)
        return features + self.refine(features)


class InverseTransform(nn.Module):
    """Feature space back to an image: a residual conv-ReLU-conv refinement, then a projection.

    Official name ``inverse_transform_function`` (``pre`` -> ``refine``, ``ext`` ->
    ``project``).

    Args:
        width: feature channels.
        out_channels: image channels.

    Shape:
        input ``(B, width, H, W)``; output ``(B, out_channels, H, W)``, not clamped.
    """

    def __init__(self, width: int, out_channels: int) -> None:
        super().__init__()
        self.refine = nn.Sequential(_conv(width, width), nn.ReLU(inplace=True), _conv(width, width))
        self.project = _conv(width, out_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.project(x + self.refine(x))


class ConsistencyGate(nn.Module):
    """The DEAM weight of one unrolled iteration: how much to trust the noisy observation.

    The paper's adaptive consistency prior replaces a fixed data-fidelity step size by a
    learned per-pixel, per-channel weight ``delta`` computed from the observation features and
    the current NLO estimate; the iteration then takes ``(1 - delta) * estimate + delta *
    observation``. Official class ``Weight`` (``C`` -> ``observation_conv``, ``cat`` ->
    ``fuse``, ``weight.conv_du`` -> ``gate``).

    Args:
        width: feature channels C.
        reduction: the gate's hidden layer has ``C // reduction`` channels.

    Shape:
        inputs ``(B, C, H, W)`` each; output ``(B, C, H, W)`` in ``(0, 1)``.
    """

    def __init__(self, width: int, reduction: int) -> None:
        super().__init__()
        self.observation_conv = _conv(width, width)
        self.fuse = _conv(2 * width, width, kernel_size=1)
        self.gate = _gate(width, reduction)

    def forward(self, estimate: torch.Tensor, observation: torch.Tensor) -> torch.Tensor:
        mixed = torch.cat((self.observation_conv(observation), estimate), dim=1)
        return self.gate(self.fuse(mixed))


class SkipGate(nn.Module):
    """The DEAM module inside the NLO sub-network: blends an encoder skip with the decoder path.

    The coarser decoder features (already up-sampled by nearest neighbour) go through a 3x3
    conv-ReLU; a gate computed from that and the skip then takes ``(1 - w) * coarse + w *
    skip``. Official class ``Attention_unet`` (``ConvTranspose`` -> ``upsample_conv``,
    although it is a plain convolution; ``C`` -> ``skip_conv``; ``cat`` -> ``fuse``;
    ``conv_du`` -> ``gate``).

    Args:
        width: feature channels C.
        reduction: the gate's hidden layer has ``C // reduction`` channels.

    Shape:
        inputs ``(B, C, H, W)`` each; output ``(B, C, H, W)``.
    """

    def __init__(self, width: int, reduction: int) -> None:
        super().__init__()
        self.gate = _gate(width, reduction)
        self.fuse = _conv(2 * width, width, kernel_size=1)
        self.skip_conv = _conv(width, width)
        self.upsample_conv = ConvReLU(width, width)

    def forward(self, skip: torch.Tensor, upsampled: torch.Tensor) -> torch.Tensor:
        coarse = self.upsample_conv(upsampled)
        weight = self.gate(self.fuse(torch.cat((self.skip_conv(skip), coarse), dim=1)))
        return torch.lerp(coarse, skip, weight)


class EncoderLevel(nn.Module):
    """3x3 conv-ReLUs at full size (their output is the skip), then a stride-2 conv-ReLU.

    Official class ``Encoding_block`` (``body.0 .. body.{n-2}`` -> ``convs``, the last, strided
    ``body.{n-1}`` -> ``down``).

    Args:
        width: feature channels C.
        num_convs: convolutions in total, the strided one included (at least 1).

    Shape:
        input ``(B, C, H, W)``; outputs the skip ``(B, C, H, W)`` and ``(B, C, ceil(H / 2),
        ceil(W / 2))``.
    """

    def __init__(self, width: int, num_convs: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(*(ConvReLU(width, width) for _ in range(num_convs - 1)))
        self.down = ConvReLU(width, width, stride=2)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        skip = self.convs(x)
        return skip, self.down(skip)


class DecoderLevel(nn.Module):
    """Fuses the gated skip with the up-sampled coarser features, then 3x3 conv-ReLUs.

    The coarser features arrive already up-sampled by nearest neighbour. Official class
    ``Decoding_block2`` (``upsample.conv1`` -> ``skip_conv``, ``upsample.ConvTranspose`` ->
    ``upsample_conv``, ``upsample.cat`` -> ``fuse``, ``body`` -> ``convs``).

    Args:
        width: feature channels C.
        num_convs: conv-ReLUs after the fusion (at least 1).

    Shape:
        inputs ``(B, C, H, W)`` each; output ``(B, C, H, W)``.
    """

    def __init__(self, width: int, num_convs: int) -> None:
        super().__init__()
        self.skip_conv = ConvReLU(width, width)
        self.upsample_conv = ConvReLU(width, width)
        self.fuse = _conv(2 * width, width, kernel_size=1)
        self.convs = nn.Sequential(*(ConvReLU(width, width) for _ in range(num_convs)))

    def forward(self, gated_skip: torch.Tensor, upsampled: torch.Tensor) -> torch.Tensor:
        fused = torch.cat((self.skip_conv(gated_skip), self.upsample_conv(upsampled)), dim=1)
        return self.convs(self.fuse(fused))


class NLOSubnetwork(nn.Module):
    """The paper's non-linear filtering operator (NLO): a gated U-Net with a global residual.

    Four encoder levels (each halving the size), two conv-ReLUs in the middle, four decoder
    levels whose skips are blended in by :class:`SkipGate`, a final 3x3 convolution and the
    input added back. Official class ``ziwangluo1`` (``e0..e3`` -> ``encoders``, ``mid`` ->
    ``middle``, ``attention0..3`` -> ``skip_gates``, ``de0..de3`` -> ``decoders``); index 0 is
    the finest level everywhere.

    Args:
        width: feature channels C.
        encoder_convs: convolutions per encoder level (the strided one included).
        decoder_convs: conv-ReLUs per decoder level after the fusion.
        gate_reduction: hidden-channel reduction of the skip gates.
        official_unused_layers: also create the four layers that the official class builds
            but never calls (see below).

    Shape:
        input ``(B, C, H, W)`` with H and W multiples of 16; output the same shape.
    """

    def __init__(
        self,
        width: int,
        *,
        encoder_convs: int,
        decoder_convs: int,
        gate_reduction: int,
        official_unused_layers: bool,
    ) -> None:
        super().__init__()
        if official_unused_layers:
            # The official constructor builds three "dilated" convolutions (kernels 3, 5, 7,
            # in fact not dilated) and a 1x1 fusion of their outputs, but its forward pass
            # never calls them. They are kept only so that official checkpoints load with
            # strict=True and the paper's parameter count (2,228,131) is reproduced; they are
            # frozen so that optimizers, weight decay and DDP's unused-parameter check ignore
            # them.
            self.unused_conv_dila1 = _conv(width, width, kernel_size=3)
            self.unused_conv_dila2 = _conv(width, width, kernel_size=5)
            self.unused_conv_dila3 = _conv(width, width, kernel_size=7)
            self.unused_cat1 = _conv(3 * width, width, kernel_size=1)
        self.encoders = nn.ModuleList(EncoderLevel(width, encoder_convs) for _ in range(_LEVELS))
        self.skip_gates = nn.ModuleList(SkipGate(width, gate_reduction) for _ in range(_LEVELS))
        self.middle = nn.Sequential(ConvReLU(width, width), ConvReLU(width, width))
        self.decoders = nn.ModuleList(DecoderLevel(width, decoder_convs) for _ in range(_LEVELS))
        self.final = _conv(width, width)

    def unused_parameters(self) -> list[nn.Parameter]:
        """The frozen parameters of the official-but-unused layers (empty if not created)."""
        names = ("unused_conv_dila1", "unused_conv_dila2", "unused_conv_dila3", "unused_cat1")
        return [
            p for name in names if hasattr(self, name) for p in getattr(self, name).parameters()
        ]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skips = []
        features = x
        for encoder in self.encoders:
            skip, features = encoder(features)
            skips.append(skip)
        features = self.middle(features)
        for level in reversed(range(_LEVELS)):
            # The reference up-samples the same tensor once in the gate and once in the
            # decoder; one nearest-neighbour copy serves both.
            upsampled = F.interpolate(features, scale_factor=2.0, mode="nearest")
            gated = self.skip_gates[level](skips[level], upsampled)
            features = self.decoders[level](gated, upsampled)
        return x + self.final(features)


@register_net(
    "deamnet",
    presets={
        "paper": {},
        "small": {"width": 32, "official_unused_layers": False},
    },
)
class DeamNet(nn.Module):
    """DeamNet (Ren, He, Wang and Zhao, CVPR 2021), configured as in AMSNet (``Deam(Isreal=True)``).

    The image is mapped to ``width`` feature channels (the observation ``y``). Starting from
    ``x_0 = y``, each of ``iterations`` unrolled steps applies the shared NLO sub-network and
    then the adaptive consistency prior: ``x_k = (1 - delta_k) * NLO(x_{k-1}) + delta_k * y``,
    with a learned weight map ``delta_k`` per step. The last estimate is mapped back to an
    image. The network predicts the clean image directly (there is no image-level residual;
    the NLO sub-network and the two transforms are residual in feature space).

    The official ``Isreal`` flag only chooses 3 (real colour, ``True``) or 1 (grayscale) image
    channels; it is ``in_channels`` here.

    Args:
        in_channels: image channels, also the output's (3 = ``Isreal=True``, 1 = ``False``).
        width: feature channels of every layer (64).
        iterations: unrolled steps; the NLO sub-network is shared by all of them, each step
            has its own consistency gate (4).
        encoder_convs: convolutions per encoder level, the strided one included (3).
        decoder_convs: conv-ReLUs per decoder level after the fusion (2).
        gate_reduction: hidden-channel reduction in every gate (16; ``width // gate_reduction``
            must be at least 1).
        official_unused_layers: create the four frozen layers that the official NLO class
            builds but never uses (needed to load official weights strictly and to count the
            paper's 2,228,131 parameters; they never change the output).

    Shape:
        input ``(B, in_channels, H, W)``, nominally in ``[0, 1]``, any ``H, W >= 1`` (padded by
        reflection to a multiple of 16 inside and cropped back); output the same shape, the
        denoised image, not clamped.

    Example:
        >>> net = DeamNet(width=8, iterations=1, gate_reduction=4)
        >>> net(torch.rand(1, 3, 20, 18)).shape
        torch.Size([1, 3, 20, 18])
    """

    size_multiple: int = 2**_LEVELS
    blind_spot: bool = False

    def __init__(
        self,
        in_channels: int = 3,
        *,
        width: int = 64,
        iterations: int = 4,
        encoder_convs: int = 3,
        decoder_convs: int = 2,
        gate_reduction: int = 16,
        official_unused_layers: bool = True,
    ) -> None:
        super().__init__()
        for name, value in (
            ("in_channels", in_channels),
            ("width", width),
            ("iterations", iterations),
            ("encoder_convs", encoder_convs),
            ("decoder_convs", decoder_convs),
            ("gate_reduction", gate_reduction),
        ):
            if value < 1:
                raise ConfigError(f"DeamNet {name} must be at least 1, got {value}")
        if width // gate_reduction < 1:
            raise ConfigError(
                f"DeamNet width ({width}) must be at least gate_reduction ({gate_reduction}) "
                "so that the gates keep a hidden channel; lower gate_reduction"
            )
        self.to_features = FeatureTransform(in_channels, width)
        self.to_image = InverseTransform(width, in_channels)
        self.consistency = nn.ModuleList(
            ConsistencyGate(width, gate_reduction) for _ in range(iterations)
        )
        self.nlo = NLOSubnetwork(
            width,
            encoder_convs=encoder_convs,
            decoder_convs=decoder_convs,
            gate_reduction=gate_reduction,
            official_unused_layers=official_unused_layers,
        )
        # The reference draws every convolution weight from a Xavier normal distribution and
        # keeps PyTorch's default bias initialisation.
        for module in self.modules():
            if isinstance(module, nn.Conv2d):
                nn.init.xavier_normal_(module.weight)
        for parameter in self.nlo.unused_parameters():
            parameter.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        padded, padding = pad_to_multiple(x, self.size_multiple, mode="reflect")
        observation = self.to_features(padded)
        estimate = observation
        for consistency in self.consistency:
            filtered = self.nlo(estimate)
            delta = consistency(filtered, observation)
            estimate = torch.lerp(filtered, observation, delta)
        return crop(self.to_image(estimate), padding)
