"""Counting what a call computes: FLOPs, per-layer MACs and the backbone's input shapes.

Two conventions, because papers use both under the name "FLOPs":

* ``flops``: :class:`torch.utils.flop_counter.FlopCounterMode`, which sees every matrix
  product PyTorch runs (convolutions, transposed convolutions, attention's ``bmm``, linear
  layers) and counts a multiply-add as 2 FLOPs. MACs (multiply-accumulates) are half of it.
* ``layer_macs``: the rule of the per-layer profilers common in denoising papers (thop's
  ``count_convNd``): each convolution counts its output elements times its input channels per
  group times its kernel size, each ``Linear`` layer its output elements times its input
  features; products outside layers (attention) count nothing. For a stride-s transposed
  convolution this is s^2 times the true MACs. Convolutions are seen at the operator level
  (every ``aten.convolution`` while the backbone runs), not through module hooks, so a
  backbone that applies a layer's weight in slices (Restormer's feed-forward block, for
  speed) is counted like the single layer it stands for.

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
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.flop_counter import FlopCounterMode

_CONVOLUTION_OPS = (torch.ops.aten.convolution.default, torch.ops.aten._convolution.default)


class _ConvolutionMacs(TorchDispatchMode):
    """Adds the profilers'-rule MACs of every convolution run while ``active`` is true."""

    def __init__(self, count: Count) -> None:
        super().__init__()
        self.count = count
        self.active = 0  # depth of backbone calls in progress

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        output = func(*args, **(kwargs or {}))
        if self.active and func in _CONVOLUTION_OPS:
            weight, transposed, groups = args[1], args[6], args[8]
            # Weights are (out, in/groups, *kernel), or (in, out/groups, *kernel) transposed.
            in_per_group = weight.shape[0] // groups if transposed else weight.shape[1]
            self.count.layer_macs += output.numel() * in_per_group * math.prod(weight.shape[2:])
        return output


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
    convolutions = _ConvolutionMacs(count)

    def on_linear(layer: nn.Linear, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor):
        count.layer_macs += output.numel() * layer.in_features

    def on_call(_module: nn.Module, inputs: tuple[torch.Tensor, ...]) -> None:
        count.calls.append(tuple(inputs[0].shape))
        convolutions.active += 1

    def after_call(*_args: object) -> None:
        convolutions.active -= 1

    handles = [
        backbone.register_forward_pre_hook(on_call),
        backbone.register_forward_hook(after_call, always_call=True),
    ]
    handles += [
        layer.register_forward_hook(on_linear)
        for layer in backbone.modules()
        if isinstance(layer, nn.Linear)
    ]
    try:
        with FlopCounterMode(display=False) as counter, convolutions:
            yield count
        count.flops = int(counter.get_total_flops())
    finally:
        for handle in handles:
            handle.remove()


def count_call(backbone: nn.Module, fn: Callable[[], object]) -> Count:
    """``fn()`` counted, watching ``backbone`` (see :func:`counting`)."""
    with counting(backbone) as count:
        fn()
    return count
