"""Overlapping tiles and their smooth blending, for images too large to denoise at once.

A tile grid covers the image with tiles of a nominal size whose origins (and, except at the
image's end, sizes) are multiples of ``align`` (the PD factor times the backbone's size
multiple), so that no tile needs internal padding. Neighbouring tiles overlap by at least
``overlap`` pixels; in the overlap each tile's weight ramps smoothly (raised cosine) from
almost 0 to 1, so the blend shows no seam, and the weighted sum is normalised by the sum of
weights. Image borders get full weight (no ramp), so border pixels are not down-weighted.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch

from amsnet.errors import ShapeError


class Tile(NamedTuple):
    """A rectangle of the image: rows ``top:top+height``, columns ``left:left+width``."""

    top: int
    left: int
    height: int
    width: int


def axis_tiles(length: int, tile: int, overlap: int, align: int = 1) -> list[tuple[int, int]]:
    """``(start, size)`` of the tiles along one axis of ``length`` pixels.

    Starts are multiples of ``align``; consecutive tiles overlap by at least ``overlap``;
    every tile has size ``tile`` except when the axis is shorter than a tile, and the last
    tile, which is moved back to end exactly at ``length`` (rounded to ``align``, so it may be
    up to ``align - 1`` pixels larger).

    Example:
        >>> axis_tiles(100, 48, 16, 8)
        [(0, 48), (32, 48), (48, 52)]
    """
    if tile < 1 or overlap < 0 or align < 1:
        raise ShapeError(f"invalid tiling: tile={tile}, overlap={overlap}, align={align}")
    if tile % align:
        raise ShapeError(f"tile size {tile} is not a multiple of the alignment {align}")
    if tile <= overlap:
        raise ShapeError(f"tile size {tile} must exceed the overlap {overlap}")
    if length <= tile:
        return [(0, length)]
    stride = max(align, (tile - overlap) // align * align)
    starts = list(range(0, length - tile, stride))
    last = (length - tile) // align * align
    if last > starts[-1]:
        starts.append(last)
    return [(start, tile if start != starts[-1] else length - start) for start in starts]


def tile_grid(height: int, width: int, tile: int, overlap: int, align: int = 1) -> list[Tile]:
    """Tiles covering a ``height x width`` image (row-major order); see :func:`axis_tiles`."""
    rows = axis_tiles(height, tile, overlap, align)
    columns = axis_tiles(width, tile, overlap, align)
    return [Tile(top, left, h, w) for top, h in rows for left, w in columns]


def _ramp(size: int, overlap: int, start_edge: bool, end_edge: bool) -> torch.Tensor:
    weight = torch.ones(size)
    ramp_length = min(overlap, size // 2)
    if ramp_length == 0:
        return weight
    # sin^2 rises from ~0 to ~1 over the overlap; it is never exactly 0, so every pixel keeps
    # a positive total weight even where only one tile covers it.
    steps = (torch.arange(ramp_length, dtype=torch.float64) + 0.5) / ramp_length
    ramp = torch.sin(steps * math.pi / 2).square().float()
    if not start_edge:
        weight[:ramp_length] = ramp
    if not end_edge:
        weight[size - ramp_length :] = ramp.flip(0)
    return weight


def blend_window(tile: Tile, height: int, width: int, overlap: int) -> torch.Tensor:
    """Blending weights ``(tile.height, tile.width)`` of ``tile`` in a ``height x width`` image.

    Sides on the image border have weight 1 up to the edge; inner sides ramp over
    ``overlap`` pixels.
    """
    rows = _ramp(tile.height, overlap, tile.top == 0, tile.top + tile.height >= height)
    columns = _ramp(tile.width, overlap, tile.left == 0, tile.left + tile.width >= width)
    return rows[:, None] * columns[None, :]
