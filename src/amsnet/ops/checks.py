"""Guards for tensors entering the public ops (kornia style: check at the door, fail clearly)."""

from __future__ import annotations

import torch

from amsnet.errors import ShapeError


def check_bchw(x: torch.Tensor, name: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x`` is a floating-point ``(B, C, H, W)`` tensor."""
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != 4:
        raise ShapeError(
            f"{name} must have shape (B, C, H, W), got {tuple(x.shape)}; "
            "add a batch dimension with x.unsqueeze(0) for a single image"
        )
    if not x.is_floating_point():
        raise ShapeError(
            f"{name} must be a floating-point tensor in [0, 1], got dtype {x.dtype}; "
            "convert with x.float() / 255 for 8-bit data"
        )


def check_factor(factor: int, name: str = "factor") -> None:
    """Raise :class:`ShapeError` unless ``factor`` is a positive integer."""
    if isinstance(factor, bool) or not isinstance(factor, int) or factor < 1:
        raise ShapeError(f"{name} must be a positive integer, got {factor!r}")


def check_divisible(x: torch.Tensor, factor: int, name: str = "input") -> None:
    """Raise :class:`ShapeError` unless height and width of ``x`` are multiples of ``factor``."""
    h, w = x.shape[-2:]
    if h % factor or w % factor:
        raise ShapeError(
            f"{name} size {h}x{w} is not divisible by the pixel-shuffle factor {factor}; "
            "pad it first with amsnet.ops.pad_to_multiple (the methods do this for you)"
        )
