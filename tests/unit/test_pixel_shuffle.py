"""PD and its inverse: exact round trips in both layouts, the documented ordering, errors."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from amsnet.errors import ShapeError
from amsnet.ops.padding import crop, pad_to_multiple
from amsnet.ops.pixel_shuffle import pd_down, pd_mosaic_down, pd_mosaic_up, pd_up

sizes = st.integers(min_value=1, max_value=23)
factors = st.integers(min_value=1, max_value=6)


@settings(max_examples=60, deadline=None)
@given(factor=factors, height=sizes, width=sizes, batch=st.integers(1, 3))
def test_batch_layout_round_trip_any_size(factor: int, height: int, width: int, batch: int):
    x = torch.rand(batch, 3, height, width, generator=torch.Generator().manual_seed(height))
    padded, padding = pad_to_multiple(x, factor)
    sub = pd_down(padded, factor)
    assert sub.shape == (
        batch * factor**2,
        3,
        padded.shape[-2] // factor,
        padded.shape[-1] // factor,
    )
    assert torch.equal(crop(pd_up(sub, factor), padding), x)


@settings(max_examples=60, deadline=None)
@given(factor=factors, height=sizes, width=sizes, pad=st.integers(0, 3))
def test_mosaic_layout_round_trip_any_size(factor: int, height: int, width: int, pad: int):
    x = torch.rand(2, 3, height, width, generator=torch.Generator().manual_seed(width))
    padded, padding = pad_to_multiple(x, factor)
    mosaic = pd_mosaic_down(padded, factor, pad)
    h, w = padded.shape[-2:]
    assert mosaic.shape == (2, 3, h + 2 * factor * pad, w + 2 * factor * pad)
    assert torch.equal(crop(pd_mosaic_up(mosaic, factor, pad), padding), x)


def test_batch_layout_ordering_matches_the_official_definition():
    x = torch.randn(2, 3, 10, 15)
    f = 5
    sub = pd_down(x, f)
    for b in range(2):
        for i in range(f):
            for j in range(f):
                assert torch.equal(sub[b * f * f + i * f + j], x[b, :, i::f, j::f])


def test_mosaic_tiles_hold_sub_images_and_zero_padding():
    x = torch.randn(1, 3, 8, 6) + 10  # no zeros inside the image
    f, p = 2, 2
    mosaic = pd_mosaic_down(x, f, p)
    th, tw = 4 + 2 * p, 3 + 2 * p
    for i in range(f):
        for j in range(f):
            tile = mosaic[0, :, i * th : (i + 1) * th, j * tw : (j + 1) * tw]
            assert torch.equal(tile[:, p:-p, p:-p], x[0, :, i::f, j::f])
            assert tile[:, :p].abs().sum() == 0 and tile[:, :, -p:].abs().sum() == 0


def test_pd_down_rejects_sizes_not_divisible_with_a_fix_in_the_message():
    with pytest.raises(ShapeError, match="not divisible.*pad"):
        pd_down(torch.zeros(1, 3, 10, 11), 2)


@pytest.mark.parametrize(
    "bad",
    [torch.zeros(3, 8, 8), torch.zeros(1, 3, 8, 8, dtype=torch.uint8), [[0.0]]],
    ids=["no-batch", "uint8", "list"],
)
def test_pd_down_rejects_bad_tensors(bad):
    with pytest.raises(ShapeError):
        pd_down(bad, 2)


def test_pd_up_rejects_a_batch_that_is_not_a_multiple_of_factor_squared():
    with pytest.raises(ShapeError, match="factor"):
        pd_up(torch.zeros(3, 3, 4, 4), 2)


@pytest.mark.parametrize("factor", [0, -1, 2.0])
def test_factor_must_be_a_positive_integer(factor):
    with pytest.raises(ShapeError):
        pd_down(torch.zeros(1, 1, 4, 4), factor)


def test_gradcheck_both_layouts():
    x = torch.rand(1, 2, 6, 4, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda t: pd_down(t, 2), (x,))
    assert torch.autograd.gradcheck(lambda t: pd_mosaic_up(pd_mosaic_down(t, 2, 1), 2, 1), (x,))


def test_reflect_padding_works_on_tiny_images():
    x = torch.rand(1, 3, 1, 2)
    padded, padding = pad_to_multiple(x, 5)
    assert padded.shape[-2:] == (5, 5)
    assert torch.equal(crop(padded, padding), x)
