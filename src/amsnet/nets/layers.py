"""Blocks shared by more than one backbone (and nothing used by only one)."""

from __future__ import annotations

import torch
from torch import nn

from amsnet.ops.channel_norm import bias_free_norm_bf16, channel_layer_norm

REDUCED_PRECISION_MIN_WIDTH = 32
"""Narrowest first-level width at which a layer-norm network (NAFNet, Restormer) runs faster
in bfloat16 autocast than in fp32 on a CPU (measured: widths 8 and 12 slower or equal, 32 and
48 faster; docs/precision.md). Narrower ones set ``reduced_precision_pays = False``, except a
NAFNet with amsnet's C kernels built (its fused bfloat16 path is faster, docs/precision.md)."""


class ChannelLayerNorm(nn.Module):
    """Layer normalisation over the channel dimension of a ``(B, C, H, W)`` tensor, per pixel.

    With ``bias=True`` this is the usual layer norm (NAFNet's ``LayerNorm2d``, Restormer's
    "WithBias" variant). With ``bias=False`` it is Restormer's "BiasFree" variant: the input
    is divided by its channel standard deviation *without* subtracting the mean, and there is
    no bias.

    Args:
        channels: number of channels C.
        bias: learn a bias and centre the input (see above).
        eps: added to the variance.

    Shape:
        input and output ``(B, C, H, W)``.
    """

    def __init__(self, channels: int, *, bias: bool = True, eps: float = 1e-6) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bias is not None and x.is_contiguous(memory_format=torch.channels_last):
            # In channels-last memory the channels are the innermost dimension: one fused
            # kernel on a permuted view (instead of about six, forward and backward), or at
            # inference on a CPU with few channels amsnet's own (amsnet.ops.channel_norm).
            return channel_layer_norm(x, self.weight, self.bias, self.eps)
        if (
            self.bias is None
            and not torch.is_grad_enabled()
            and x.is_contiguous(memory_format=torch.channels_last)
        ):
            out = bias_free_norm_bf16(x, self.weight, self.eps)
            return out if out is not None else self._bias_free_inference(x)
        # Two plain means instead of torch.var_mean: the fused op reduces over the channel
        # dimension 2-9x slower on CPU (measured on 1x96x64x64, both memory formats).
        centred = x - x.mean(dim=1, keepdim=True)
        scale = torch.rsqrt(centred.square().mean(dim=1, keepdim=True) + self.eps)
        weight = self.weight.view(1, -1, 1, 1)
        if self.bias is None:
            return x * scale * weight
        return centred * scale * weight + self.bias.view(1, -1, 1, 1)

    def _bias_free_inference(self, x: torch.Tensor) -> torch.Tensor:
        """The "BiasFree" norm of a channels-last ``x`` in two passes over memory.

        The fused layer-norm kernel returns, besides its centred output
        ``(x - mean) * rstd * weight``, the per-pixel ``mean`` and ``rstd``; adding back
        ``mean * rstd * weight`` in place gives ``x * rstd * weight``. That is three times
        faster than the six element-wise passes of the general path (Restormer, 8x96x128x128:
        5.4 ms against 16 ms on two cores). Gradients do not flow through the returned
        ``mean`` and ``rstd``, hence inference only.
        """
        channels_inner = x.permute(0, 2, 3, 1)
        out, mean, rstd = torch.ops.aten.native_layer_norm(
            channels_inner, (x.shape[1],), self.weight, None, self.eps
        )
        return out.addcmul_(mean * rstd, self.weight).permute(0, 3, 1, 2)
