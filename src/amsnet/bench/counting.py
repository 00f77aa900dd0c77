"""Counting what a call computes: FLOPs, per-layer MACs and the backbone's input shapes.

Two conventions, because papers use both under the name "FLOPs":

* ``flops``: :class:`torch.utils.flop_counter.FlopCounterMode`, which sees every matrix
  product PyTorch runs (convolutions, transposed convolutions, attention's ``bmm``, linear
  layers) and counts a multiply-add as 2 FLOPs. MACs (multiply-accumulates) are half of it.
* ``layer_macs``: the rule of the per-layer profilers common in denoising papers (thop's
  ``count_convNd``): each ``Conv``/``ConvTranspose`` layer counts its output elements times its
  input channels per group times its kernel size, each ``Linear`` layer its output elements
  times its input features; products outside layers (attention) count nothing. For a stride-s
  transposed convolution this is s^2 times the true MACs.

Run the call on the ``meta`` device (tensors without data): the counts depend on shapes only,
so even the paper Restormer's 18 passes are counted in a second and no memory is used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode

_CONVOLUTIONS = (
    nn.Conv1d,
    nn.Conv2d,
    nn.Conv3d,
    nn.ConvTranspose1d,
    nn.ConvTranspose2d,
    nn.ConvTranspose3d,
)


@dataclass
class Count:
    """What one call computed.

    Attributes:
        flops: FLOPs counted by ``FlopCounterMode`` (a multiply-add is 2).
        layer_macs: MACs by the per-layer profilers' rule (see the module docstring).
        calls: the input shape ``(N, C, H, W)`` of every call of the watched backbone, in
            order (before any padding the backbone does inside).
    """

    flops: int = 0
    layer_macs: int = 0
    calls: list[tuple[int, ...]] = field(default_factory=list)

    @property
    def macs(self) -> int:
        """Multiply-accumulates: half the FLOPs."""
        return self.flops // 2


@contextmanager
def counting(backbone: nn.Module) -> Iterator[Count]:
    """Count everything computed in the block; ``backbone``'s layers and calls are watched.

    Example:
        >>> conv = nn.Conv2d(3, 8, 3, padding=1)
        >>> with counting(conv) as count:
        ...     _ = conv(torch.zeros(1, 3, 10, 10))
        >>> count.flops == 2 * 8 * 3 * 9 * 100, count.layer_macs == 8 * 3 * 9 * 100
        (True, True)
        >>> count.calls
        [(1, 3, 10, 10)]
    """
    count = Count()

    def on_layer(layer: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
        count.layer_macs += layer_macs(layer, output)

    def on_call(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        count.calls.append(tuple(inputs[0].shape))

    handles = [backbone.register_forward_pre_hook(on_call)]
    handles += [
        layer.register_forward_hook(on_layer)
        for layer in backbone.modules()
        if isinstance(layer, (*_CONVOLUTIONS, nn.Linear))
    ]
    try:
        with FlopCounterMode(display=False) as counter:
            yield count
        count.flops = int(counter.get_total_flops())
    finally:
        for handle in handles:
            handle.remove()


def layer_macs(layer: nn.Module, output: torch.Tensor) -> int:
    """MACs of one layer call by the per-layer profilers' rule (0 for other layers)."""
    if isinstance(layer, _CONVOLUTIONS):
        per_output = layer.in_channels // layer.groups * math.prod(layer.kernel_size)
        return output.numel() * per_output
    if isinstance(layer, nn.Linear):
        return output.numel() * layer.in_features
    return 0


def count_call(backbone: nn.Module, fn: Callable[[], object]) -> Count:
    """``fn()`` counted, watching ``backbone`` (see :func:`counting`)."""
    with counting(backbone) as count:
        fn()
    return count
