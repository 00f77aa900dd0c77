"""The decoded pixels of a folder's images in one memory-mapped file, built once.

Decoding a photo costs far more than cutting a crop from it. :class:`DecodedImageCache` decodes
every image of a list once (:func:`amsnet.data.io.read_array`) into a file that the OS then
pages in crop by crop, shared by all DataLoader workers; :class:`amsnet.data.folders.NoisyFolder`
uses it when given a ``cache_dir``. See ``benchmarks/bench_data_pipeline.py`` for the figures.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from collections import OrderedDict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from amsnet.atomic import atomic_path
from amsnet.data.io import read_array
from amsnet.errors import DataError

logger = logging.getLogger(__name__)


class RecentImages:
    """Decoded images kept in memory, least recently used first out, within a byte budget.

    Pickling (spawned data-loader workers) gives an empty copy, so each worker fills its own
    instead of receiving the parent's pixels.

    Args:
        budget: bytes of pixels to keep (0 keeps nothing; a larger image is never kept).
    """

    def __init__(self, budget: int) -> None:
        self.budget = budget
        self._images: OrderedDict[int, np.ndarray] = OrderedDict()
        self._used = 0

    def __len__(self) -> int:
        return len(self._images)

    def get(self, number: int, decode: Callable[[], np.ndarray]) -> np.ndarray:
        """Image ``number``: from memory, else ``decode()`` (kept if it fits the budget)."""
        cached = self._images.get(number)
        if cached is not None:
            self._images.move_to_end(number)
            return cached
        array = decode()
        if array.nbytes <= self.budget:
            self._images[number] = array
            self._used += array.nbytes
            while self._used > self.budget:
                _, evicted = self._images.popitem(last=False)
                self._used -= evicted.nbytes
        return array

    def __getstate__(self) -> dict[str, Any]:
        return {"budget": self.budget}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["budget"])


class DecodedImageCache:
    """The decoded pixels of a list of images in one memory-mapped file, built once.

    Files in ``cache_dir``: ``<folder>-<hash of the folder path>.bin`` (the images' integer
    pixels back to back, each at a 64-byte aligned offset, uint8 or uint16 per image) and a
    ``.json`` index (shapes, dtypes, offsets). The index stores a key made of every image's
    relative path, size and modification time; when any of them changes, the cache is rebuilt.

    The file is opened lazily in each process (DataLoader workers included) and never pickled.
    """

    FORMAT = 1

    def __init__(self, data_path: Path, index: dict[str, Any]) -> None:
        self.data_path = data_path
        self.index = index
        self._mapped: np.memmap | None = None

    @staticmethod
    def _key(root: Path, paths: list[Path]) -> str:
        entries = []
        for path in paths:
            status = path.stat()
            entries.append([path.relative_to(root).as_posix(), status.st_size, status.st_mtime_ns])
        text = json.dumps({"format": DecodedImageCache.FORMAT, "files": entries})
        return hashlib.sha256(text.encode()).hexdigest()

    @classmethod
    def open_or_build(
        cls, root: str | os.PathLike[str], paths: list[Path], cache_dir: str | os.PathLike[str]
    ) -> DecodedImageCache:
        """Open the cache of ``paths`` (files under ``root``) in ``cache_dir``, or build it.

        Raises:
            DataError: an image cannot be decoded, or ``cache_dir`` cannot be written.
        """
        folder = Path(root).resolve()
        directory = Path(cache_dir)
        stem = f"{folder.name or 'root'}-{hashlib.sha256(str(folder).encode()).hexdigest()[:16]}"
        data_path = directory / f"{stem}.bin"
        index_path = directory / f"{stem}.json"
        key = cls._key(folder, [Path(path).resolve() for path in paths])
        index = cls._read_index(index_path)
        if (
            index is not None
            and index.get("key") == key
            and data_path.is_file()
            and data_path.stat().st_size == index.get("total_bytes")
        ):
            return cls(data_path, index)
        logger.info("decoding %d images of %s into %s", len(paths), folder, data_path)
        try:
            directory.mkdir(parents=True, exist_ok=True)
            index = cls._build(data_path, paths, key)
            with atomic_path(index_path) as tmp:
                tmp.write_text(json.dumps(index))
        except OSError as error:
            raise DataError(
                f"cannot write the decoded-image cache in {directory} ({error}); choose a "
                "writable cache_dir or pass cache_dir=None"
            ) from error
        return cls(data_path, index)

    @staticmethod
    def _read_index(index_path: Path) -> dict[str, Any] | None:
        try:
            return json.loads(index_path.read_text())
        except (OSError, ValueError):
            return None

    @staticmethod
    def _build(data_path: Path, paths: list[Path], key: str) -> dict[str, Any]:
        shapes, dtypes, offsets = [], [], []
        offset = 0
        with atomic_path(data_path) as tmp, open(tmp, "wb") as handle:
            for path in paths:
                array = read_array(path)
                padding = -offset % 64
                handle.write(b"\x00" * padding)
                offset += padding
                offsets.append(offset)
                shapes.append(list(array.shape))
                dtypes.append(array.dtype.name)
                handle.write(np.ascontiguousarray(array).tobytes())
                offset += array.nbytes
        return {
            "format": DecodedImageCache.FORMAT,
            "key": key,
            "total_bytes": offset,
            "shapes": shapes,
            "dtypes": dtypes,
            "offsets": offsets,
        }

    def __len__(self) -> int:
        return len(self.index["shapes"])

    def areas(self) -> list[int]:
        """``H * W`` of every image, upright."""
        return [int(shape[0] * shape[1]) for shape in self.index["shapes"]]

    def image(self, number: int) -> np.ndarray:
        """A read-only ``(H, W, C)`` view of image ``number`` (no pixel is read until used)."""
        if self._mapped is None:
            self._mapped = np.memmap(self.data_path, dtype=np.uint8, mode="r")
        shape = tuple(self.index["shapes"][number])
        dtype = np.dtype(self.index["dtypes"][number])
        start = self.index["offsets"][number]
        count = int(np.prod(shape)) * dtype.itemsize
        return self._mapped[start : start + count].view(dtype).reshape(shape)

    def __getstate__(self) -> dict[str, Any]:
        state = self.__dict__.copy()
        state["_mapped"] = None  # a memmap pickles as a full copy of its data
        return state
