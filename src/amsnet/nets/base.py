"""The backbone contract every registered network follows.

A *backbone* (the paper's denoiser D_E) is an ordinary image-to-image ``nn.Module``:

* input: ``(B, C, H, W)`` float, nominally in ``[0, 1]`` (masked pixels are 0), any ``H`` and
  ``W`` >= 1;
* output: the same shape, the denoised estimate (not clamped);
* a network that down-samples pads to its own multiple internally (reflection) and crops back;
  ``size_multiple`` says which multiple it pads to, so tiled inference can choose tile sizes
  that need no padding;
* constructors take plain keyword arguments (full words), never config objects.

``reduced_precision_pays`` (optional, default True) is False for a network that bfloat16 does
not speed up on a CPU (:mod:`amsnet.precision` then keeps it in fp32 under ``auto``).

``blind_spot`` is True for networks whose output at a pixel provably ignores that pixel
(DBSNl); AP-BSN needs one, AMSNet works with any backbone.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch


@runtime_checkable
class Backbone(Protocol):
    """Structural type of a backbone (see the module docstring for the contract)."""

    size_multiple: int
    blind_spot: bool

    def __call__(self, x: torch.Tensor) -> torch.Tensor: ...
