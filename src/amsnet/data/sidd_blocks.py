"""SIDD validation and benchmark blocks in memory, and evenly spread subsets of them.

:class:`SiddBlocks` holds the arrays of a block file (:func:`amsnet.data.sidd.read_sidd_validation`,
:func:`amsnet.data.sidd.read_sidd_benchmark`) once and yields :class:`SiddBlock` views into them,
in the file's image-major order.

Where the benchmark is silent: :meth:`SiddBlocks.spread` takes the centre block of ``k`` equal
runs of the image-major block order (:func:`spread_indices`), so any subset of at least 40
blocks touches every image, and a smaller one is spread over all of them (never the first image
only, as a plain ``[:k]`` would be).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from amsnet.data.images import from_uint8
from amsnet.errors import ConfigError, ShapeError


def spread_indices(total: int, count: int) -> np.ndarray:
    """``count`` indices spread evenly over ``range(total)``: the centres of equal runs.

    Args:
        total: number of items (1280 SIDD blocks).
        count: how many to take, ``1 <= count <= total``.

    Returns:
        int64 array of shape ``(count,)``, strictly increasing, ``floor((i + 0.5) * total /
        count)`` for ``i = 0 .. count - 1``.

    Example:
        >>> spread_indices(1280, 40)[:3].tolist()
        [16, 48, 80]
    """
    if isinstance(count, bool) or not isinstance(count, int | np.integer):
        raise ConfigError(f"subset must be an integer between 1 and {total}, got {count!r}")
    count = int(count)
    if not 1 <= count <= total:
        raise ConfigError(f"subset must be an integer between 1 and {total}, got {count!r}")
    steps = np.arange(count, dtype=np.int64)
    # Integer arithmetic: exact for any size, no floating-point rounding at run boundaries.
    return (2 * steps + 1) * total // (2 * count)


class SiddBlock(NamedTuple):
    """One SIDD block.

    Attributes:
        index: position in the file's image-major order, ``image * 32 + block``, 0-based.
        noisy: uint8 ``(256, 256, 3)`` RGB view into the file array, or a float32
            ``(3, 256, 256)`` tensor in ``[0, 1]`` from :meth:`SiddBlocks.tensors`.
        clean: the ground truth in the same form, or ``None`` for benchmark blocks.
    """

    index: int
    noisy: Any
    clean: Any


class SiddBlocks:
    """The blocks of a SIDD validation or benchmark file, or an evenly spread subset of them.

    Holds the file arrays once (251 MB each for the published files) and yields views into
    them; nothing is copied except by :meth:`tensors`, one block at a time.

    Args:
        noisy: uint8 array ``(images, blocks, H, W, 3)``.
        clean: the ground truth of the same shape, or ``None``.
        indices: the selected flat indices (image-major), or ``None`` for all blocks.
        source: the noisy file, for messages.
    """

    def __init__(
        self,
        noisy: np.ndarray,
        clean: np.ndarray | None = None,
        *,
        indices: Sequence[int] | np.ndarray | None = None,
        source: Path | None = None,
    ) -> None:
        if noisy.ndim != 5 or noisy.shape[-1] != 3 or noisy.dtype != np.uint8:
            raise ShapeError(
                f"SIDD blocks must be a uint8 array (images, blocks, H, W, 3), got "
                f"{noisy.dtype} {noisy.shape}"
            )
        if clean is not None and (clean.shape != noisy.shape or clean.dtype != np.uint8):
            raise ShapeError(
                f"ground-truth blocks {clean.dtype} {clean.shape} do not match the noisy "
                f"blocks {noisy.dtype} {noisy.shape}"
            )
        self.noisy = noisy
        self.clean = clean
        self.source = source
        total = noisy.shape[0] * noisy.shape[1]
        selected = np.arange(total) if indices is None else np.asarray(indices, dtype=np.int64)
        if selected.ndim != 1 or (
            selected.size and (selected.min() < 0 or selected.max() >= total)
        ):
            raise ConfigError(f"block indices must be a 1-D selection of range({total})")
        self.indices = selected

    @property
    def num_images(self) -> int:
        """Images in the file (40)."""
        return int(self.noisy.shape[0])

    @property
    def blocks_per_image(self) -> int:
        """Blocks per image (32)."""
        return int(self.noisy.shape[1])

    def position(self, index: int) -> tuple[int, int]:
        """``(image, block)``, both 0-based, of a flat block index."""
        image, block = divmod(int(index), self.blocks_per_image)
        return image, block

    def spread(self, count: int) -> SiddBlocks:
        """``count`` blocks evenly spread over all images (see :func:`spread_indices`)."""
        chosen = self.indices[spread_indices(len(self.indices), count)]
        return SiddBlocks(self.noisy, self.clean, indices=chosen, source=self.source)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> SiddBlock:
        index = int(self.indices[item])
        image, block = self.position(index)
        clean = None if self.clean is None else self.clean[image, block]
        return SiddBlock(index, self.noisy[image, block], clean)

    def __iter__(self) -> Iterator[SiddBlock]:
        for item in range(len(self)):
            yield self[item]

    def tensors(self) -> Iterator[SiddBlock]:
        """Like iteration, with float32 ``(3, H, W)`` tensors in ``[0, 1]`` (value / 255).

        Each tensor is a copy of one block (:func:`amsnet.data.images.from_uint8`).
        """
        for index, noisy, clean in self:
            yield SiddBlock(
                index,
                from_uint8(noisy),
                None if clean is None else from_uint8(clean),
            )

    def __repr__(self) -> str:
        kind = "pairs" if self.clean is not None else "noisy blocks"
        return f"SiddBlocks({len(self)} {kind} of {self.noisy.shape}, source={self.source})"
