"""Tile grids and blending windows."""

from __future__ import annotations

import itertools

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from amsnet.errors import ShapeError
from amsnet.ops.tiling import axis_tiles, blend_window, tile_grid


@settings(max_examples=80, deadline=None)
@given(
    length=st.integers(1, 700),
    tile_units=st.integers(2, 12),
    overlap_units=st.integers(0, 3),
    align=st.sampled_from([1, 2, 8, 64]),
)
def test_tiles_cover_every_pixel_with_aligned_starts_and_enough_overlap(
    length, tile_units, overlap_units, align
):
    tile, overlap = tile_units * align, min(overlap_units * align, (tile_units - 1) * align)
    tiles = axis_tiles(length, tile, overlap, align)
    covered = torch.zeros(length, dtype=torch.bool)
    for start, size in tiles:
        assert start % align == 0 and size > 0 and start + size <= length
        covered[start : start + size] = True
    assert covered.all()
    for (a, size_a), (b, _) in itertools.pairwise(tiles):
        assert a + size_a - b >= overlap  # neighbours share at least the overlap
    assert tiles[-1][0] + tiles[-1][1] == length


def test_grid_is_row_major_and_small_images_are_one_tile():
    assert tile_grid(30, 40, 64, 16, 8) == [(0, 0, 30, 40)]
    grid = tile_grid(100, 100, 48, 16, 8)
    assert [t.top for t in grid[:3]] == [0, 0, 0] and grid[1].left > grid[0].left


def test_window_ramps_inside_and_is_flat_on_image_borders():
    grid = tile_grid(100, 100, 48, 16, 8)
    first = blend_window(grid[0], 100, 100, 16)
    assert first[0, 0] == 1 and first[:32, :32].min() == 1  # top-left corner of the image
    assert 0 < first[-1, 0] < 0.01 and 0 < first[0, -1] < 0.01  # ramps towards neighbours
    weight = torch.zeros(100, 100)
    for t in grid:
        weight[t.top : t.top + t.height, t.left : t.left + t.width] += blend_window(t, 100, 100, 16)
    assert weight.min() > 0.5  # every pixel is well covered


@pytest.mark.parametrize(
    ("args", "match"),
    [((100, 50, 10, 8), "multiple"), ((100, 16, 16, 8), "exceed"), ((100, 0, 0, 1), "invalid")],
)
def test_bad_tilings_are_rejected(args, match):
    with pytest.raises(ShapeError, match=match):
        axis_tiles(*args)
