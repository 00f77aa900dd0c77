"""Pixel-shuffle down-sampling (PD) and its exact inverse, in the two layouts of the field.

PD with factor ``f`` splits an image into ``f * f`` sub-images: sub-image ``(i, j)`` holds the
pixels ``x[..., i::f, j::f]``. Neighbouring pixels of a sub-image were ``f`` pixels apart in the
original, which breaks up the spatial correlation of real camera noise (Zhou et al., AAAI 2020;
AP-BSN, CVPR 2022; AMSNet supplement section 1.1).

* **Batch layout** (AMSNet): the sub-images are stacked along the batch dimension,
  ``(B, C, H, W) -> (B * f * f, C, H / f, W / f)``, sub-image ``n = b * f * f + i * f + j``.
* **Mosaic layout** (AP-BSN): the sub-images, each padded by ``pad`` pixels, are tiled into one
  image of size ``(H + 2 * f * pad, W + 2 * f * pad)`` so that a blind-spot network sees them as
  one picture without mixing neighbouring tiles.

Both need ``H`` and ``W`` divisible by ``f``; :mod:`amsnet.ops.padding` makes any size fit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from amsnet.errors import ShapeError
from amsnet.ops.checks import check_bchw, check_divisible, check_factor


def pd_down(x: torch.Tensor, factor: int) -> torch.Tensor:
    """Pixel-shuffle down-sampling into the batch layout.

    Args:
        x: image batch ``(B, C, H, W)``; ``H`` and ``W`` divisible by ``factor``.
        factor: PD stride ``f`` (the paper's ``P_f``); 1 returns ``x`` unchanged.

    Returns:
        Sub-images ``(B * f * f, C, H / f, W / f)``; entry ``b * f * f + i * f + j`` is
        ``x[b, :, i::f, j::f]``.

    Raises:
        ShapeError: wrong rank or a size not divisible by ``factor``.

    Example:
        >>> x = torch.arange(16.0).view(1, 1, 4, 4)
        >>> pd_down(x, 2)[1, 0]
        tensor([[ 1.,  3.],
                [ 9., 11.]])
    """
    check_bchw(x)
    check_factor(factor)
    if factor == 1:
        return x
    check_divisible(x, factor)
    b, c, h, w = x.shape
    f = factor
    sub = x.reshape(b, c, h // f, f, w // f, f).permute(0, 3, 5, 1, 2, 4)
    return sub.reshape(b * f * f, c, h // f, w // f)


def pd_up(sub: torch.Tensor, factor: int) -> torch.Tensor:
    """Exact inverse of :func:`pd_down`.

    Args:
        sub: sub-images ``(B * f * f, C, h, w)``.
        factor: the factor used by :func:`pd_down`.

    Returns:
        Images ``(B, C, h * f, w * f)``.
    """
    check_bchw(sub, "sub-images")
    check_factor(factor)
    if factor == 1:
        return sub
    n, c, h, w = sub.shape
    f = factor
    if n % (f * f):
        raise ShapeError(
            f"pd_up got {n} sub-images, not a multiple of factor**2 = {f * f}; "
            "give it the output of pd_down with the same factor"
        )
    x = sub.reshape(n // (f * f), f, f, c, h, w).permute(0, 3, 4, 1, 5, 2)
    return x.reshape(n // (f * f), c, h * f, w * f)


def pd_mosaic_down(x: torch.Tensor, factor: int, pad: int = 0, value: float = 0.0) -> torch.Tensor:
    """Pixel-shuffle down-sampling into AP-BSN's padded mosaic layout.

    Args:
        x: image batch ``(B, C, H, W)``; ``H`` and ``W`` divisible by ``factor``.
        factor: PD stride ``f``. With ``f == 1`` the image is only padded by ``pad``.
        pad: pixels of ``value`` around every sub-image (AP-BSN's ``pd_pad``, 2 by default
            there), so that a network with a bounded receptive field does not mix tiles.
        value: fill value of the padding (AP-BSN uses 0).

    Returns:
        Mosaic ``(B, C, H + 2 * f * pad, W + 2 * f * pad)``; tile ``(i, j)`` holds sub-image
        ``x[..., i::f, j::f]`` surrounded by ``pad`` pixels.

    Example:
        >>> pd_mosaic_down(torch.zeros(1, 3, 10, 10), 2, pad=2).shape
        torch.Size([1, 3, 18, 18])
    """
    check_bchw(x)
    check_factor(factor)
    if pad < 0:
        raise ShapeError(f"pad must be >= 0, got {pad}")
    if factor == 1:
        return F.pad(x, (pad, pad, pad, pad), value=value)
    check_divisible(x, factor)
    b, c = x.shape[:2]
    f = factor
    sub = pd_down(x, f)
    if pad:
        sub = F.pad(sub, (pad, pad, pad, pad), value=value)
    th, tw = sub.shape[-2:]
    mosaic = sub.reshape(b, f, f, c, th, tw).permute(0, 3, 1, 4, 2, 5)
    return mosaic.reshape(b, c, f * th, f * tw)


def pd_mosaic_up(mosaic: torch.Tensor, factor: int, pad: int = 0) -> torch.Tensor:
    """Exact inverse of :func:`pd_mosaic_down` (the padding around each tile is dropped).

    Args:
        mosaic: ``(B, C, H + 2 * f * pad, W + 2 * f * pad)``.
        factor: the factor used by :func:`pd_mosaic_down`.
        pad: the padding used by :func:`pd_mosaic_down`.

    Returns:
        Images ``(B, C, H, W)``.
    """
    check_bchw(mosaic, "mosaic")
    check_factor(factor)
    b, c, mh, mw = mosaic.shape
    f = factor
    if mh % f or mw % f:
        raise ShapeError(f"mosaic size {mh}x{mw} is not divisible by the factor {f}")
    th, tw = mh // f, mw // f
    if th <= 2 * pad or tw <= 2 * pad:
        raise ShapeError(f"mosaic tiles of {th}x{tw} are too small for pad={pad}")
    if f == 1:
        return mosaic[..., pad : mh - pad, pad : mw - pad]
    tiles = mosaic.reshape(b, c, f, th, f, tw).permute(0, 2, 4, 1, 3, 5)
    inner = tiles[..., pad : th - pad, pad : tw - pad]
    return pd_up(inner.reshape(b * f * f, c, th - 2 * pad, tw - 2 * pad), f)
