"""Where training crops come from: a list of images, as files or in memory.

* :class:`ImageSource`: what :class:`amsnet.data.training_crops.TrainingCrops` needs of its
  images (how many, their areas, one image as an ``(H, W, C)`` array, a name for messages).
* :class:`FileImages`: image files decoded on demand and kept in memory (integer pixels, per
  process, least recently used first out, up to ``memory_cache_bytes``), or decoded once into
  a memory-mapped file (``cache_dir``, :class:`amsnet.data.cache.DecodedImageCache`) that the
  OS pages in crop by crop; ``benchmarks/bench_data_pipeline.py`` has the figures.
* :class:`ArrayImages`: images already in memory (synthetic camera noise, a teacher's outputs).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

import numpy as np

from amsnet.data.cache import DecodedImageCache, RecentImages
from amsnet.data.io import image_area, read_array
from amsnet.errors import ConfigError, DataError


class ImageSource(Protocol):
    """A list of images: ``(H, W, C)`` arrays, integer (uint8/uint16) or float32 in [0, 1]."""

    def __len__(self) -> int: ...

    def areas(self) -> list[int]:
        """``H * W`` of every image."""
        ...

    def image(self, number: int) -> np.ndarray:
        """Image ``number`` as an ``(H, W, C)`` array."""
        ...

    def name(self, number: int) -> str:
        """Where image ``number`` comes from, for messages."""
        ...


class FileImages:
    """Image files, decoded on demand and kept in memory, or decoded once into a memory map.

    Args:
        paths: the files.
        root: their common folder (names the memory-mapped cache).
        cache_dir: decode every image once into a memory-mapped file there
            (:class:`amsnet.data.cache.DecodedImageCache`) instead of the in-memory cache.
        memory_cache_bytes: budget of decoded pixels kept per process, least recently used
            first out (0 disables it).
    """

    def __init__(
        self,
        paths: Sequence[Path],
        root: str | os.PathLike[str],
        *,
        cache_dir: str | os.PathLike[str] | None = None,
        memory_cache_bytes: int = 2 << 30,
    ) -> None:
        if not paths:
            raise DataError(f"no images to train on in {root}; check the folder")
        if isinstance(memory_cache_bytes, bool) or not isinstance(memory_cache_bytes, int):
            raise ConfigError(f"memory_cache_bytes must be an integer, got {memory_cache_bytes!r}")
        if memory_cache_bytes < 0:
            raise ConfigError(f"memory_cache_bytes must be >= 0, got {memory_cache_bytes}")
        self.paths = [Path(path) for path in paths]
        self.memory_cache_bytes = memory_cache_bytes
        self.decoded_cache: DecodedImageCache | None = None
        if cache_dir is not None:
            self.decoded_cache = DecodedImageCache.open_or_build(root, self.paths, cache_dir)
        self._areas: list[int] | None = None
        self._memory = RecentImages(memory_cache_bytes)

    def __len__(self) -> int:
        return len(self.paths)

    def areas(self) -> list[int]:
        if self._areas is None:
            if self.decoded_cache is not None:
                self._areas = self.decoded_cache.areas()
            else:
                self._areas = [image_area(path) for path in self.paths]
        return self._areas

    def image(self, number: int) -> np.ndarray:
        if self.decoded_cache is not None:
            return self.decoded_cache.image(number)
        return self._memory.get(number, lambda: read_array(self.paths[number]))

    def name(self, number: int) -> str:
        return str(self.paths[number])


class ArrayImages:
    """Images held in memory: ``(H, W, C)`` float32 arrays in ``[0, 1]`` or integer arrays.

    Args:
        arrays: the images.
        names: one name per image, for messages.
    """

    def __init__(self, arrays: Sequence[np.ndarray], names: Sequence[str]) -> None:
        if len(arrays) != len(names) or not arrays:
            raise ConfigError("ArrayImages needs one name per image and at least one image")
        self.arrays = list(arrays)
        self.names = list(names)

    def __len__(self) -> int:
        return len(self.arrays)

    def areas(self) -> list[int]:
        return [int(array.shape[0] * array.shape[1]) for array in self.arrays]

    def image(self, number: int) -> np.ndarray:
        return self.arrays[number]

    def name(self, number: int) -> str:
        return self.names[number]
