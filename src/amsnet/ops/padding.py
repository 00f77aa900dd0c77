"""Padding to a multiple and cropping back: how every part of the package accepts any size.

The official AMSNet code crops user images to multiples of 32 (or crashes); here a size that
does not fit is extended by reflection and the result is cropped back to the input size, so
no pixel of the user's image is ever dropped.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amsnet.ops.checks import check_factor

Padding = tuple[int, int, int, int]  # (left, right, top, bottom), the order F.pad uses


def padding_for_multiple(height: int, width: int, multiple: int) -> Padding:
    """Bottom/right padding that makes ``height`` and ``width`` multiples of ``multiple``.

    Example:
        >>> padding_for_multiple(33, 47, 8)
        (0, 1, 0, 7)
    """
    check_factor(multiple, "multiple")
    return (0, -width % multiple, 0, -height % multiple)


def pad(
    x: torch.Tensor, padding: Padding, mode: str = "reflect", value: float = 0.0
) -> torch.Tensor:
    """Pad the last two dimensions of ``x`` by ``padding`` = (left, right, top, bottom).

    ``mode`` is ``"reflect"``, ``"replicate"``, ``"circular"`` or ``"constant"``. Reflection
    needs the pad to be smaller than the dimension; where it is not (tiny images) the pad is
    applied in several reflect steps, and a dimension of size 1 is replicated, so any size
    works.

    Args:
        x: tensor ``(..., H, W)``.
        padding: pixels to add (left, right, top, bottom), each >= 0.
        mode: padding mode.
        value: fill value for ``"constant"``.

    Returns:
        Tensor ``(..., H + top + bottom, W + left + right)``.
    """
    if not any(padding):
        return x
    if mode == "constant":
        return F.pad(x, padding, mode="constant", value=value)
    if mode != "reflect":
        return _pad_4d(x, padding, mode)
    left, right, top, bottom = padding
    while left or right or top or bottom:
        h, w = x.shape[-2:]
        # Reflection can add at most size-1 pixels per side in one step.
        step = (min(left, w - 1), min(right, w - 1), min(top, h - 1), min(bottom, h - 1))
        if not any(step):  # a 1-pixel dimension cannot be reflected
            return _pad_4d(x, (left, right, top, bottom), "replicate")
        x = _pad_4d(x, step, "reflect")
        left, right, top, bottom = (
            p - s for p, s in zip((left, right, top, bottom), step, strict=True)
        )
    return x


def _pad_4d(x: torch.Tensor, padding: Padding, mode: str) -> torch.Tensor:
    # F.pad's non-constant modes want a batch and a channel dimension.
    shape = x.shape
    flat = x.reshape(-1, 1, *shape[-2:]) if x.ndim != 4 else x
    out = F.pad(flat, padding, mode=mode)
    return out.reshape(*shape[:-2], *out.shape[-2:]) if x.ndim != 4 else out


def pad_to_multiple(
    x: torch.Tensor, multiple: int, mode: str = "reflect"
) -> tuple[torch.Tensor, Padding]:
    """Pad ``x`` at the bottom and right so that H and W are multiples of ``multiple``.

    Args:
        x: tensor ``(..., H, W)``.
        multiple: the required multiple (a PD factor, a network's down-sampling step).
        mode: see :func:`pad`.

    Returns:
        The padded tensor and the padding used, to give to :func:`crop`.

    Example:
        >>> y, padding = pad_to_multiple(torch.zeros(1, 3, 33, 47), 8)
        >>> tuple(y.shape), tuple(crop(y, padding).shape)
        ((1, 3, 40, 48), (1, 3, 33, 47))
    """
    padding = padding_for_multiple(x.shape[-2], x.shape[-1], multiple)
    return pad(x, padding, mode), padding


def crop(x: torch.Tensor, padding: Padding) -> torch.Tensor:
    """Remove ``padding`` = (left, right, top, bottom) from the last two dimensions of ``x``."""
    left, right, top, bottom = padding
    h, w = x.shape[-2:]
    return x[..., top : h - bottom, left : w - right]
