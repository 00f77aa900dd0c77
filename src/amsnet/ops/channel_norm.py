"""Layer normalisation over the channels of each pixel of a channels-last feature map.

:func:`channel_layer_norm` is ``F.layer_norm`` over the channel dimension of a ``(B, C, H, W)``
tensor (NAFNet's ``LayerNorm2d``). In channels-last memory the channels of one pixel are one
contiguous row, so PyTorch's fused kernel runs on a permuted view without a copy. For the
narrow levels of a small network (4 to 32 channels) at inference on a CPU in float32, the row
is too short for that kernel (it is bound by per-row overhead) and the C kernel of
:mod:`amsnet.native` is used when it could be built: ``(2, 8, 512, 512)`` on 2 cores 12.0 ms to
2.5 ms, the small NAFNet 1.3x faster as a whole (docs/precision.md). The two agree to float32
rounding (about 2e-6 here); everywhere else (gradients, another device, dtype or layout, a graph
being exported or compiled, no compiler) the PyTorch kernel runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amsnet import native


def native_norm_applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> bool:
    """Whether :func:`channel_layer_norm` would use the C kernel for these tensors (before
    asking whether it could be built)."""
    return (
        x.device.type == "cpu"
        and x.dtype == torch.float32
        and x.dim() == 4
        and x.shape[1] in native.NORM_CHANNELS
        and x.numel() > 0
        and x.is_contiguous(memory_format=torch.channels_last)
        and weight.dtype == torch.float32
        and bias.dtype == torch.float32
        and weight.device.type == "cpu"
        and bias.device.type == "cpu"
        and weight.is_contiguous()
        and bias.is_contiguous()
        and not torch.is_grad_enabled()
        # An exported or compiled graph (ONNX, torch.compile) keeps the portable operator.
        and not torch.compiler.is_compiling()
        and not torch.jit.is_tracing()
    )


def channel_layer_norm(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor, eps: float
) -> torch.Tensor:
    """Layer norm over dimension 1 of a channels-last ``x``.

    Args:
        x: ``(B, C, H, W)``, contiguous in channels-last memory.
        weight, bias: ``(C,)``.
        eps: added to the (biased) variance.

    Returns:
        ``(B, C, H, W)`` channels-last: ``(x - mean) / sqrt(var + eps) * weight + bias``, the
        mean and variance over the C values of each pixel.
    """
    if native_norm_applies(x, weight, bias):
        lib = native.library()
        if lib is not None:
            out = torch.empty_like(x, memory_format=torch.channels_last)
            channels = x.shape[1]
            code = lib.amsnet_channel_norm(
                x.data_ptr(),
                out.data_ptr(),
                x.numel() // channels,
                channels,
                weight.data_ptr(),
                bias.data_ptr(),
                eps,
                torch.get_num_threads(),
            )
            if code == 0:
                return out
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, eps).permute(0, 3, 1, 2)
