"""Guards for tensors entering the public ops (kornia style: check at the door, fail clearly)."""

from __future__ import annotations

import torch

from amsnet.errors import ShapeError

_LAYOUT_HINTS = {
    4: ("(B, C, H, W)", "add a batch dimension with x.unsqueeze(0) for a single image"),
    3: ("(C, H, W)", "take one image out of a batch with x[0]"),
}


def check_image_tensor(
    x: torch.Tensor, name: str = "input", *, ndim: int = 4, allow_uint8: bool = False
) -> None:
    """Raise :class:`ShapeError` unless ``x`` is an image tensor of ``ndim`` dimensions.

    Args:
        x: the value to check.
        name: how the message calls it.
        ndim: 4 for ``(B, C, H, W)`` batches, 3 for ``(C, H, W)`` images.
        allow_uint8: also accept 8-bit integer tensors (metrics on quantised images).
    """
    layout, hint = _LAYOUT_HINTS[ndim]
    if not isinstance(x, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if x.ndim != ndim:
        raise ShapeError(f"{name} must have shape {layout}, got {tuple(x.shape)}; {hint}")
    if not (x.is_floating_point() or (allow_uint8 and x.dtype == torch.uint8)):
        accepted = "a floating-point tensor in [0, 1]" + (" or uint8" if allow_uint8 else "")
        raise ShapeError(
            f"{name} must be {accepted}, got dtype {x.dtype}; "
            "convert with x.float() / 255 for 8-bit data"
        )


def check_bchw(x: torch.Tensor, name: str = "input") -> None:
    """Raise :class:`ShapeError` unless ``x`` is a floating-point ``(B, C, H, W)`` tensor."""
    check_image_tensor(x, name)


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
