"""The eight flips and rotations of the geometric self-ensemble."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.ops.dihedral import check_transform_count, dihedral, DIHEDRAL_TRANSFORMS, undo_dihedral


def test_each_transform_is_undone_and_all_eight_differ():
    image = torch.arange(2 * 3 * 4 * 5, dtype=torch.float32).view(2, 3, 4, 5)
    seen = set()
    for index in range(DIHEDRAL_TRANSFORMS):
        moved = dihedral(image, index)
        assert torch.equal(undo_dihedral(moved, index), image)
        seen.add(tuple(moved.flatten().tolist()))
    assert len(seen) == DIHEDRAL_TRANSFORMS


def test_the_first_four_keep_the_shape_and_the_last_four_transpose():
    image = torch.zeros(3, 4, 7)
    shapes = [tuple(dihedral(image, i).shape) for i in range(DIHEDRAL_TRANSFORMS)]
    assert shapes[:4] == [(3, 4, 7)] * 4 and shapes[4:] == [(3, 7, 4)] * 4
    assert dihedral(image, 0) is image


@pytest.mark.parametrize("count", [0, 9, -1, 2.0, True])
def test_a_bad_count_names_the_argument(count):
    with pytest.raises(ConfigError, match="--ensemble must be a whole number from 1"):
        check_transform_count(count, "--ensemble")
