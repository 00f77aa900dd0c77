"""Layer normalisation over the channels of each pixel of a channels-last feature map.

:func:`channel_layer_norm` is ``F.layer_norm`` over the channel dimension of a ``(B, C, H, W)``
tensor (NAFNet's ``LayerNorm2d``). In channels-last memory the channels of one pixel are one
contiguous row, so PyTorch's fused kernel runs on a permuted view without a copy. For the
narrow levels of a small network (4 to 32 channels) at inference on a CPU in float32, the row
is too short for that kernel (it is bound by per-row overhead) and the C kernel of
:mod:`amsnet.native` is used when it could be built: ``(2, 8, 512, 512)`` on 2 cores 12.0 ms to
2.5 ms, the small NAFNet 1.3x faster as a whole (docs/precision.md). The two agree to float32
rounding (about 2e-6 here). In training the C forward keeps each pixel's statistics for the C
backward (``(8, 8, 96, 96)`` forward + backward 2.5 to 0.8 ms; a training step of the student
1.10x faster). A bfloat16 ``x`` with float32 weights (what CPU bfloat16 autocast leaves) at
inference goes to the bfloat16 C kernel, any width, bfloat16 out: autocast would otherwise
convert to float32 and back around the norm (``(2, 8, 512, 512)`` 25.7 to 3.2 ms; the shipped
student 1.36x faster in bfloat16 than in float32, docs/precision.md). Everywhere else
(another device, dtype or layout, a graph being exported or compiled, no compiler) the
PyTorch kernel runs.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch.autograd.function import once_differentiable

from amsnet import native


def native_norm_applies(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor) -> bool:
    """Whether :func:`channel_layer_norm` would use the float32 C kernels for these tensors
    (before asking whether they could be built), at inference or in training."""
    return (
        _native_layout(x, weight, bias)
        and x.dtype == torch.float32
        and x.shape[1] in native.NORM_CHANNELS
    )


def native_bf16_norm_applies(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None
) -> bool:
    """Whether :func:`channel_layer_norm` (or, with ``bias`` ``None``,
    :func:`bias_free_norm_bf16`) would use the bfloat16 C kernel: a bfloat16 ``x`` with
    float32 ``weight`` and ``bias`` (the layout CPU bfloat16 autocast leaves), at most
    :data:`amsnet.native.BF16_MAX_CHANNELS` channels, at inference (no gradient asked)."""
    return (
        _native_layout(x, weight, bias)
        and x.dtype == torch.bfloat16
        and x.shape[1] <= native.BF16_MAX_CHANNELS
        and not _wants_grad(x, weight, bias)
    )


def _wants_grad(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """Whether autograd will ask for a gradient through the norm."""
    return torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )


def _native_layout(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None) -> bool:
    """What both C kernels need besides the dtype: CPU tensors, a non-empty channels-last
    ``x``, contiguous float32 ``weight`` and ``bias`` of one value per channel, and no graph
    being exported or compiled."""
    return (
        x.device.type == "cpu"
        and x.dim() == 4
        and x.numel() > 0
        and weight.shape == (x.shape[1],)
        and x.is_contiguous(memory_format=torch.channels_last)
        and weight.dtype == torch.float32
        and weight.device.type == "cpu"
        and weight.is_contiguous()
        and (
            bias is None
            or (
                bias.shape == weight.shape
                and bias.dtype == torch.float32
                and bias.device.type == "cpu"
                and bias.is_contiguous()
            )
        )
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
        mean and variance over the C values of each pixel. Differentiable either way.
    """
    if native_bf16_norm_applies(x, weight, bias):
        lib = native.library()
        out = _native_forward(lib, x, weight, bias, eps, None) if lib is not None else None
        if out is not None:
            return out
    elif native_norm_applies(x, weight, bias):
        lib = native.library()
        if lib is not None:
            if _wants_grad(x, weight, bias):
                return _NativeLayerNorm.apply(x, weight, bias, eps, lib)
            out = _native_forward(lib, x, weight, bias, eps, None)
            if out is not None:
                return out
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, eps).permute(0, 3, 1, 2)


def bias_free_norm_bf16(x: torch.Tensor, weight: torch.Tensor, eps: float) -> torch.Tensor | None:
    """Restormer's "BiasFree" norm ``x / sqrt(var + eps) * weight`` (the variance over the
    channels of each pixel, the mean not subtracted from the output) of a bfloat16
    channels-last ``x`` by the C kernel, at inference; ``None`` when it does not apply
    (another dtype or layout, gradients asked, no C kernels), for the caller's own path.

    Under CPU bfloat16 autocast PyTorch's layer norm runs in float32, so the map would be
    converted there and back; the paper Restormer spent 15% of its bfloat16 time on those
    conversions and the norm's extra pass (docs/precision.md)."""
    if not native_bf16_norm_applies(x, weight, None):
        return None
    lib = native.library()
    return _native_forward(lib, x, weight, None, eps, None) if lib is not None else None


def _native_forward(
    lib, x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, eps: float, stats
) -> torch.Tensor | None:
    """The C forward into a new channels-last tensor of ``x``'s dtype (float32, or bfloat16
    with float32 statistics); ``stats`` is ``None`` or, for float32, the pair of ``(rows,)``
    tensors that receive each pixel's mean and reciprocal standard deviation. ``bias``
    ``None`` (bfloat16 only) is the "BiasFree" norm. ``None`` when the library has no kernel
    for this channel count."""
    out = torch.empty_like(x, memory_format=torch.channels_last)
    channels = x.shape[1]
    arguments = (
        x.data_ptr(),
        out.data_ptr(),
        x.numel() // channels,
        channels,
        weight.data_ptr(),
        bias.data_ptr() if bias is not None else None,
        eps,
    )
    threads = torch.get_num_threads()
    if x.dtype == torch.bfloat16:
        code = lib.amsnet_channel_norm_bf16(*arguments, int(bias is not None), threads)
    else:
        saved = (stats[0].data_ptr(), stats[1].data_ptr()) if stats is not None else (None, None)
        code = lib.amsnet_channel_norm(*arguments, *saved, threads)
    return out if code == 0 else None


class _NativeLayerNorm(torch.autograd.Function):
    """The C layer norm in training: the forward keeps each pixel's mean and reciprocal
    standard deviation, the backward computes all three gradients in one pass (the pair
    PyTorch runs instead is bound by per-row overhead for short rows, as its forward is;
    docs/precision.md has the training-step figures)."""

    @staticmethod
    def forward(ctx, x, weight, bias, eps, lib):
        rows = x.numel() // x.shape[1]
        mean, rstd = x.new_empty(rows), x.new_empty(rows)
        out = _native_forward(lib, x, weight, bias, eps, (mean, rstd))
        if out is None:  # not reached: NORM_CHANNELS is what the library supports
            raise RuntimeError(f"amsnet's C layer norm has no kernel for {x.shape[1]} channels")
        ctx.save_for_backward(x, weight, mean, rstd)
        ctx.lib = lib
        return out

    @staticmethod
    @once_differentiable
    def backward(ctx, grad_out):
        x, weight, mean, rstd = ctx.saved_tensors
        grad_out = grad_out.contiguous(memory_format=torch.channels_last)
        grad_x = torch.empty_like(x, memory_format=torch.channels_last)
        grad_weight, grad_bias = torch.empty_like(weight), torch.empty_like(weight)
        channels = x.shape[1]
        code = ctx.lib.amsnet_channel_norm_backward(
            x.data_ptr(),
            grad_out.data_ptr(),
            x.numel() // channels,
            channels,
            weight.data_ptr(),
            mean.data_ptr(),
            rstd.data_ptr(),
            grad_x.data_ptr(),
            grad_weight.data_ptr(),
            grad_bias.data_ptr(),
            torch.get_num_threads(),
        )
        if code != 0:  # not reached, as in the forward
            raise RuntimeError(f"amsnet's C layer norm has no kernel for {channels} channels")
        return grad_x, grad_weight, grad_bias, None, None
