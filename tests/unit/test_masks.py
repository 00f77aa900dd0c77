"""Mask partitions: disjoint, covering, balanced counts, shared over channels, seeded."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ShapeError
from amsnet.ops.masks import hidden_masks, random_partition


@pytest.mark.parametrize("mode", ["uniform", "balanced"])
@pytest.mark.parametrize("k", [2, 3, 4, 7])
def test_partitions_are_disjoint_and_cover_every_pixel(mode, k):
    g = torch.Generator().manual_seed(k)
    assignment = random_partition(5, 9, 11, k, generator=g, mode=mode)
    assert assignment.shape == (5, 1, 9, 11) and assignment.dtype == torch.int64
    assert assignment.min() >= 0 and assignment.max() < k
    masks = hidden_masks(assignment, k)
    assert masks.shape == (k, 5, 1, 9, 11)
    assert torch.equal(masks.sum(dim=0), torch.ones(5, 1, 9, 11, dtype=torch.int64))


@pytest.mark.parametrize("k", [2, 3, 4, 5])
@pytest.mark.parametrize(("height", "width"), [(8, 8), (7, 9), (1, 3), (32, 32)])
def test_balanced_mode_hits_floor_or_ceil_exactly(k, height, width):
    g = torch.Generator().manual_seed(0)
    assignment = random_partition(20, height, width, k, generator=g, mode="balanced")
    n = height * width
    counts = torch.stack([(assignment == i).flatten(1).sum(1) for i in range(k)], dim=1)
    assert counts.min() >= n // k and counts.max() <= -(-n // k)
    assert torch.equal(counts.sum(1), torch.full((20,), n))


def test_balanced_mode_gives_the_extra_pixels_to_random_branches():
    g = torch.Generator().manual_seed(0)
    assignment = random_partition(200, 3, 3, 2, generator=g, mode="balanced")
    larger_is_branch0 = ((assignment == 0).flatten(1).sum(1) == 5).float().mean()
    assert 0.3 < larger_is_branch0 < 0.7


def test_uniform_mode_is_iid_with_probability_one_over_k():
    g = torch.Generator().manual_seed(0)
    assignment = random_partition(64, 32, 32, 4, generator=g, mode="uniform")
    share = torch.bincount(assignment.flatten(), minlength=4).float() / assignment.numel()
    assert torch.allclose(share, torch.full((4,), 0.25), atol=0.01)
    counts = (assignment == 0).flatten(1).sum(1).float()
    assert counts.std() > 5  # binomial spread, unlike the balanced mode


@pytest.mark.parametrize("mode", ["uniform", "balanced"])
def test_a_seeded_generator_reproduces_the_partition(mode):
    def draw(seed):
        return random_partition(
            3, 16, 16, 3, generator=torch.Generator().manual_seed(seed), mode=mode
        )

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))


def test_every_sub_image_gets_its_own_partition():
    assignment = random_partition(4, 16, 16, 2, generator=torch.Generator().manual_seed(0))
    assert not torch.equal(assignment[0], assignment[1])


def test_bad_arguments_raise():
    g = torch.Generator()
    with pytest.raises(ShapeError, match="num_parts"):
        random_partition(1, 4, 4, 1, generator=g)
    with pytest.raises(ShapeError, match="mode"):
        random_partition(1, 4, 4, 2, generator=g, mode="checkerboard")
