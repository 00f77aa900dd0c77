"""Random square crops shared by the folder datasets, and the checks of their settings.

* :func:`item_generator`: item ``i`` of epoch ``e`` draws from a fresh generator seeded with
  ``(seed, e, i)``, so a crop does not depend on the number of DataLoader workers or on which
  worker makes it, and resuming at step ``N`` gives the same crops as the uninterrupted run.
* :func:`random_crop_origin`: the top-left corner of a crop, uniform over the positions that fit.
* :func:`crop_array` (integer ``(H, W, C)`` arrays, before conversion) and :func:`crop_tensor`
  (``(C, H, W)`` tensors): an image smaller than the crop is reflect-padded at the bottom and
  right (the same side as :func:`amsnet.ops.pad_to_multiple`), the crop then starts at 0 along
  that side.
* :func:`random_crops`: a batch of random crops of in-memory images (demo, zero-shot fits).
* :func:`check_positive`, :func:`check_seed`, :func:`check_epoch`: the dataset settings, with a
  :class:`~amsnet.errors.ConfigError` naming the bad value.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from amsnet.errors import ConfigError


def item_generator(seed: int, epoch: int, index: int) -> torch.Generator:
    """The generator that item ``index`` of epoch ``epoch`` draws from.

    The three numbers are mixed by :class:`numpy.random.SeedSequence` (a proper hash, so
    neighbouring items get unrelated streams) into a 63-bit seed of a CPU generator.

    Example:
        >>> a = torch.rand(2, generator=item_generator(0, 1, 7))
        >>> torch.equal(a, torch.rand(2, generator=item_generator(0, 1, 7)))
        True
    """
    state = np.random.SeedSequence([seed, epoch, index]).generate_state(2, dtype=np.uint32)
    return torch.Generator().manual_seed((int(state[0]) << 31) ^ int(state[1]))


def _reflect_indices(length: int, size: int) -> np.ndarray:
    """Indices ``0..size-1`` reflected into ``[0, length)`` (numpy's "reflect", any ``size``)."""
    positions = np.arange(size)
    if length == 1:
        return np.zeros(size, dtype=np.int64)
    period = 2 * (length - 1)
    positions = positions % period
    return np.where(positions < length, positions, period - positions)


def random_crop_origin(
    height: int, width: int, size: int, generator: torch.Generator
) -> tuple[int, int]:
    """``(top, left)`` of a random ``size x size`` crop of a ``height x width`` image.

    Each coordinate is uniform over the positions where the crop fits, and 0 along a side
    shorter than the crop (:func:`crop_array` and :func:`crop_tensor` reflect-pad there). Draws
    two numbers from ``generator``.
    """
    top = int(torch.randint(0, max(height - size, 0) + 1, (1,), generator=generator))
    left = int(torch.randint(0, max(width - size, 0) + 1, (1,), generator=generator))
    return top, left


def crop_array(source: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``size x size`` crop of an ``(H, W, C)`` array, reflect-padded where the image ends."""
    block = np.asarray(source[top : top + size, left : left + size])
    height, width = block.shape[:2]
    if height < size or width < size:
        block = block[np.ix_(_reflect_indices(height, size), _reflect_indices(width, size))]
    return block


def crop_tensor(pixels: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """``size x size`` crop of a ``(C, H, W)`` tensor, reflect-padded where the image ends."""
    block = pixels[:, top : top + size, left : left + size]
    height, width = block.shape[1:]
    if height < size or width < size:
        rows = torch.from_numpy(_reflect_indices(height, size))
        columns = torch.from_numpy(_reflect_indices(width, size))
        block = block.index_select(1, rows).index_select(2, columns)
    return block


def check_positive(name: str, value: Any) -> None:
    """Raise :class:`ConfigError` unless ``value`` is an integer >= 1 (``bool`` is not)."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def check_seed(seed: Any) -> None:
    """Raise :class:`ConfigError` unless ``seed`` is an integer >= 0."""
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


def check_epoch(epoch: Any) -> None:
    """Raise :class:`ConfigError` unless ``epoch`` is an integer >= 0."""
    if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
        raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")


def random_crops(
    images: list[torch.Tensor],
    *,
    size: int,
    batch_size: int,
    generator: torch.Generator,
    flips: bool = True,
) -> torch.Tensor:
    """A batch of random crops of in-memory images (the in-memory twin of ``NoisyFolder``).

    An image is chosen with probability proportional to its area, the crop position is
    uniform, and each crop is flipped horizontally and vertically with probability 1/2.

    Args:
        images: ``(C, H, W)`` tensors, all with the same C (any sizes; smaller than ``size``
            is reflect-padded).
        size: crop side.
        batch_size: number of crops.
        generator: a CPU generator.
        flips: apply the random flips.

    Returns:
        ``(batch_size, C, size, size)`` on the images' device.
    """
    check_positive("size", size)
    check_positive("batch_size", batch_size)
    areas = torch.tensor([float(x.shape[-2] * x.shape[-1]) for x in images])
    chosen = torch.multinomial(areas, batch_size, replacement=True, generator=generator).tolist()
    flipped = (torch.rand(batch_size, 2, generator=generator) < 0.5).tolist()
    crops = []
    for number, (horizontal, vertical) in zip(chosen, flipped, strict=True):
        image = images[number]
        top, left = random_crop_origin(image.shape[-2], image.shape[-1], size, generator)
        crop = crop_tensor(image, top, left, size)
        if flips and horizontal:
            crop = crop.flip(-1)
        if flips and vertical:
            crop = crop.flip(-2)
        crops.append(crop)
    return torch.stack(crops)
