"""The eight flips and quarter-turn rotations of an image (the dihedral group of the square),
for the geometric self-ensemble: denoise each transformed copy, undo the transform, average.

A denoiser's errors that depend on orientation (a mask partition, a PD grid, a learned
directional bias) differ between the copies and partly cancel in the mean, while the image
content agrees. For the shipped AMSNet teacher (P-E) on 6 CC15 photos the mean of the eight
gains +0.36 dB over one pass, for the one-pass default student +0.05 dB on all 15
(``benchmarks/README.md``, "zoo_quality.py").

Transforms are ordered so that the first 2 (identity, horizontal flip) and the first 4 (adding
the half turn and the vertical flip) keep the image's shape; the last 4 transpose it.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from amsnet.errors import ConfigError

DIHEDRAL_TRANSFORMS = 8
"""How many distinct transforms there are."""

_QUARTER_TURNS = (0, 0, 2, 2, 1, 1, 3, 3)
_FLIPPED = (False, True, False, True, False, True, False, True)


def check_transform_count(count: int, what: str = "ensemble") -> int:
    """``count`` if it is a valid number of transforms (1 to 8), else a ConfigError naming
    ``what`` (the flag or argument)."""
    if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= 8:
        raise ConfigError(
            f"{what} must be a whole number from 1 (no self-ensemble) to "
            f"{DIHEDRAL_TRANSFORMS} (all flips and rotations), got {count!r}"
        )
    return count


def dihedral(image: torch.Tensor, index: int) -> torch.Tensor:
    """Transform ``index`` (0-7) of ``image`` ``(..., H, W)``; odd quarter turns give
    ``(..., W, H)``. Index 0 is the identity (the same tensor)."""
    turns, flipped = _QUARTER_TURNS[index], _FLIPPED[index]
    out = torch.rot90(image, turns, (-2, -1)) if turns else image
    return out.flip(-1) if flipped else out


def undo_dihedral(image: torch.Tensor, index: int) -> torch.Tensor:
    """The inverse of :func:`dihedral`: ``undo_dihedral(dihedral(x, i), i)`` equals ``x``."""
    turns, flipped = _QUARTER_TURNS[index], _FLIPPED[index]
    out = image.flip(-1) if flipped else image
    return torch.rot90(out, -turns, (-2, -1)) if turns else out


def ensemble_mean(
    denoise: Callable[[torch.Tensor, int], torch.Tensor], image: torch.Tensor, count: int
) -> torch.Tensor:
    """The mean of ``undo_dihedral(denoise(dihedral(image, i), i), i)`` over the first
    ``count`` transforms (the geometric self-ensemble).

    Args:
        denoise: maps a transformed ``(..., H', W')`` image and the transform's index to an
            output of the same shape.
        image: ``(..., H, W)``.
        count: 1 to 8 transforms (1: ``denoise(image, 0)`` as it is).

    Returns:
        ``(..., H, W)``, in the dtype ``denoise`` returns.
    """
    check_transform_count(count)
    total = None
    for index in range(count):
        out = undo_dihedral(denoise(dihedral(image, index), index), index)
        total = out.clone() if total is None else total.add_(out)
    assert total is not None
    return total.div_(count) if count > 1 else total
