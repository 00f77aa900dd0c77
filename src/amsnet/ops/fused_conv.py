"""Convolutions fused with what follows them, for inference on a CPU.

A narrow network (the small NAFNet: 8 channels at full resolution) spends most of its CPU time
in memory passes, not in arithmetic: a 3x3 depthwise convolution followed by a separate GELU
reads and writes the whole feature map twice. oneDNN, which runs PyTorch's CPU convolutions,
applies such element-wise steps inside the convolution kernel ("post-ops"), in one pass. PyTorch
exposes these kernels as ``torch.ops.mkldnn._convolution_pointwise`` (what ``torch.compile``
calls on a CPU); eager code does not use them by itself, so the functions here do.

Measured on 2 cores (``(2, 8, 512, 512)`` channels-last, fp32): depthwise 3x3 convolution +
GELU 12.1 ms separately against 2.9 ms fused; 1x1 convolution + scaled residual 1.97 against
1.10 ms. In the whole small NAFNet the gain is smaller (4%, docs/precision.md), since its
layer norms and channel attention are left as they are. The results agree with the unfused
composition to float32 rounding (about 1e-6).

Under CPU bfloat16 autocast (``--precision bf16``) the same kernels run in bfloat16: the input,
weights and bias are converted to bfloat16 and the result is bfloat16, so the GELU and the
residual addition do not run as separate bfloat16 element-wise passes (on these CPUs they cost
as much as in float32, and autocast adds a conversion before and after each). The residual
stream of a NAFNet then stays in bfloat16 from block to block, as PyTorch's bfloat16 addition
would leave it. Measured on 2 cores (AMD EPYC with AVX512-BF16, 2026-12-08): the paper NAFNet
backbone on ``(2, 3, 256, 256)`` 510 to 370 ms in bfloat16 against about 690 ms in float32, the
shipped models' PSNR changes from float32 -0.008 / -0.030 dB on CC15 as before (-0.008 /
-0.028 with the unfused bfloat16 path; docs/precision.md).

Each function falls back to the plain composition (the reference) when fusion does not apply:
gradients enabled, autocast to another dtype or device, another device or dtype, a layout other
than channels-last, a graph being exported or compiled, or a PyTorch built without oneDNN.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

# A private operator of PyTorch (inductor's): checked once, so that a build without it falls
# back to the plain composition instead of failing.
_HAS_FUSED_KERNELS = hasattr(torch.ops.mkldnn, "_convolution_pointwise")


_AUTOCAST_INPUTS = (torch.float32, torch.bfloat16)


def fused_dtype(x: torch.Tensor, conv: nn.Conv2d) -> torch.dtype | None:
    """The dtype a fused oneDNN kernel would run ``conv`` on ``x`` in, or ``None`` when it
    cannot run (see the module): float32 for float32 tensors outside autocast, bfloat16 under
    CPU bfloat16 autocast (``x`` float32 or bfloat16, the weights float32, as autocast leaves
    them)."""
    if x.device.type != "cpu" or conv.weight.dtype != torch.float32:
        return None
    if torch.is_autocast_enabled("cpu"):
        autocast_to_bf16 = torch.get_autocast_dtype("cpu") == torch.bfloat16
        dtype = torch.bfloat16 if autocast_to_bf16 and x.dtype in _AUTOCAST_INPUTS else None
    else:
        dtype = torch.float32 if x.dtype == torch.float32 else None
    runs = (
        dtype is not None
        and not torch.is_grad_enabled()
        and conv.padding_mode == "zeros"
        and not isinstance(conv.padding, str)
        and x.dim() == 4
        and x.is_contiguous(memory_format=torch.channels_last)
        and torch.backends.mkldnn.is_available()
        and _HAS_FUSED_KERNELS
        # An exported or compiled graph (ONNX, torch.compile) keeps the portable operators.
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
    )
    return dtype if runs else None


def fusable(x: torch.Tensor, conv: nn.Conv2d) -> bool:
    """Whether ``conv`` applied to ``x`` can run as a fused oneDNN kernel (see the module)."""
    return fused_dtype(x, conv) is not None


def _operands(
    dtype: torch.dtype, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The input, weights and bias in the kernel's dtype."""
    return x.to(dtype), weight.to(dtype), bias.to(dtype) if bias is not None else None


def _geometry(conv: nn.Conv2d) -> tuple[list[int], list[int], list[int], int]:
    return list(conv.padding), list(conv.stride), list(conv.dilation), conv.groups


def conv_gelu(x: torch.Tensor, conv: nn.Conv2d, *, channels: slice | None = None) -> torch.Tensor:
    """``F.gelu(conv(x))`` (exact, erf-based GELU), or of the output channels ``channels`` of
    ``conv`` only.

    Args:
        x: ``(B, C_in, H, W)``; with ``channels`` and a depthwise ``conv``, the input channels
            of that slice.
        conv: a 2-D convolution with zero padding.
        channels: a slice of the output channels (Restormer's gate half); ``conv`` must then
            be dense (one group) or depthwise.

    Returns:
        ``(B, C_out, H', W')``, channels-last when fused.
    """
    weight, bias, groups = conv.weight, conv.bias, conv.groups
    if channels is not None:
        depthwise = conv.groups == conv.in_channels == conv.out_channels
        if conv.groups != 1 and not depthwise:
            raise ValueError("a channel slice of a grouped convolution that is not depthwise")
        weight = weight[channels]
        bias = bias[channels] if bias is not None else None
        groups = weight.shape[0] if depthwise else 1
    dtype = fused_dtype(x, conv)
    if dtype is None:
        return F.gelu(F.conv2d(x, weight, bias, conv.stride, conv.padding, conv.dilation, groups))
    padding, stride, dilation, _ = _geometry(conv)
    return torch.ops.mkldnn._convolution_pointwise(
        *_operands(dtype, x, weight, bias),
        padding,
        stride,
        dilation,
        groups,
        "gelu",
        [],
        "none",
    )


def conv_scaled_residual(
    x: torch.Tensor,
    conv: nn.Conv2d,
    residual: torch.Tensor,
    scale: torch.Tensor,
    *,
    input_scale: torch.Tensor | None = None,
) -> torch.Tensor:
    """``residual + conv(x * input_scale) * scale``, with ``scale`` one factor per output
    channel and ``input_scale`` (optional) one factor per image and input channel.

    The scales are folded into the convolution's weights and bias (``conv(x) * s`` is the
    convolution with weights and bias times ``s``; ``conv(x * t)`` for one image the
    convolution with the weights' input channels times ``t``), and the addition runs as the
    kernel's post-op. ``input_scale`` is NAFNet's channel attention: folded in, the attended
    map is never written (the full-resolution ``(1, 8, 512, 512)`` step of the small NAFNet on
    2 cores: 3.0 against 2.35 ms). For more than one image the weights would differ per image,
    so the input is multiplied first.

    Args:
        x: ``(B, C_in, H, W)``.
        conv: a 2-D convolution with zero padding, one group and ``C_out`` outputs.
        residual: ``(B, C_out, H', W')``, the shape of ``conv(x)``; not modified.
        scale: ``(1, C_out, 1, 1)``.
        input_scale: ``(B, C_in, 1, 1)`` or ``None``.

    Returns:
        ``(B, C_out, H', W')``.
    """
    dtype = fused_dtype(x, conv) if residual.shape[0] == x.shape[0] else None
    fused = dtype is not None
    fold_input = fused and input_scale is not None and x.shape[0] == 1 and conv.groups == 1
    if input_scale is not None and not fold_input:
        x = x * input_scale
    if not fused:
        return torch.addcmul(residual, conv(x), scale)
    factor = scale.reshape(-1)
    weight = conv.weight * factor.view(-1, *([1] * (conv.weight.dim() - 1)))
    if fold_input:
        weight = weight * input_scale.reshape(1, -1, *([1] * (conv.weight.dim() - 2)))
    bias = conv.bias * factor if conv.bias is not None else None
    padding, stride, dilation, groups = _geometry(conv)
    # Under bfloat16 autocast the scales are folded in float32, then the product is rounded.
    x, weight, bias = _operands(dtype, x, weight, bias)
    return torch.ops.mkldnn._convolution_pointwise.binary(
        x,
        residual.to(dtype).contiguous(memory_format=torch.channels_last),
        weight,
        bias,
        padding,
        stride,
        dilation,
        groups,
        "add",
        None,
        None,
        [],
        None,
    )


def conv_pixel_shuffle(x: torch.Tensor, conv: nn.Conv2d, factor: int) -> torch.Tensor:
    """``F.pixel_shuffle(conv(x), factor)`` for a bias-free 1x1 convolution, in one pass.

    A 1x1 convolution to ``C_out * factor**2`` channels followed by a pixel shuffle is a
    transposed convolution with a ``factor x factor`` kernel and stride ``factor``: output
    pixel ``(factor * i + a, factor * j + b)`` of channel ``c`` is input pixel ``(i, j)`` times
    the weights of the convolution's output channel ``c * factor**2 + a * factor + b``. The
    transposed convolution writes the upsampled map directly, where the pair writes it twice
    (NAFNet's decoder, ``(2, 16, 256, 256)`` to ``(2, 8, 512, 512)`` channels-last on 2 cores:
    5.2 against 2.9 ms; the same numbers, the largest difference 0).

    Args:
        x: ``(B, C_in, H, W)``.
        conv: a bias-free 1x1 convolution with stride 1 and ``C_out * factor**2`` outputs.
        factor: the pixel-shuffle factor.

    Returns:
        ``(B, C_out, factor * H, factor * W)``.
    """
    rearranged = conv.bias is None and conv.kernel_size == (1, 1) and conv.stride == (1, 1)
    if not (rearranged and fusable(x, conv)):
        return F.pixel_shuffle(conv(x), factor)
    outputs, inputs = conv.weight.shape[:2]
    weight = conv.weight.view(outputs // factor**2, factor, factor, inputs).permute(3, 0, 1, 2)
    return F.conv_transpose2d(x, weight.contiguous(), stride=factor)
