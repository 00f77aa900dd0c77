"""Folders of images as datasets: unpaired noisy crops for training, noisy/clean pairs for tests.

:class:`NoisyFolder` feeds self-supervised training. Every item is one random crop of one
random image of the folder:

* The image is drawn with probability proportional to its area (``sampling="area"``, the
  default), so every pixel of the collection is about equally likely to be trained on whatever
  the image sizes; this is also what the official AMSNet pipeline amounts to, since it cuts
  every image into equal 512x512 tiles first. ``sampling="uniform"`` draws every image equally
  often instead.
* Item ``i`` of epoch ``e`` draws from a fresh generator seeded with ``(seed, e, i)``
  (:func:`item_generator`), so a crop does not depend on the number of DataLoader workers or on
  which worker makes it, and resuming at step ``N`` gives the same crops as the uninterrupted
  run. Call :meth:`NoisyFolder.set_epoch` before iterating over each epoch; indices past
  ``len(dataset)`` continue into the following epochs, so a sampler of global step indices
  works as well. (Workers kept with ``persistent_workers=True`` do not see ``set_epoch``:
  use global indices there.)
* An image smaller than the crop is reflect-padded at the bottom and right (the same side as
  :func:`amsnet.ops.pad_to_multiple`), the crop then starts at 0 along that side.
* Augmentation: horizontal and vertical flips (on by default, as in the official AMSNet
  configs) and quarter turns (off by default: the official configs do not rotate, and real
  noise is slightly more correlated along rows than along columns). Each is switchable.
* Grayscale images are repeated to three channels; alpha is ignored.

Decoding a photo costs far more than cutting a crop from it, so decoded images are kept in
memory (integer pixels, per process, least recently used first out) up to
``memory_cache_bytes``. Folders too large for that can be decoded once into a memory-mapped
file (``cache_dir``, :class:`DecodedImageCache`), which the OS pages in crop by crop; see
``benchmarks/bench_data_pipeline.py`` for the figures.

:class:`PairedFolder` yields full noisy/clean pairs (optionally a random crop with the same
geometry for both) matched by a name rule: ``"polyu"`` (``X_real.JPG`` or ``X_Real.JPG`` with
``X_mean.JPG``), ``"cc"`` (``X_real.png`` with ``X_mean.png``), ``"regex"`` (two patterns with
a ``key`` group), ``"folders"`` (two folders with the same relative names) or ``"csv"``
(a ``pairs.csv`` with ``noisy`` and ``clean``/``gt`` columns).
"""

from __future__ import annotations

import csv
import hashlib
import json
import logging
import os
import re
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from amsnet.atomic import atomic_path
from amsnet.data.io import as_rgb, from_integer, image_area, is_image_file, read_array, read_image
from amsnet.errors import ConfigError, DataError

logger = logging.getLogger(__name__)

SAMPLING_MODES: tuple[str, ...] = ("area", "uniform")
PAIR_RULES: tuple[str, ...] = ("polyu", "cc", "regex", "folders", "csv")
_RULE_PATTERNS = {
    "polyu": (r"(?P<key>.+)_real\.jpe?g", r"(?P<key>.+)_mean\.jpe?g"),
    "cc": (r"(?P<key>.+)_real\.png", r"(?P<key>.+)_mean\.png"),
}
_CLEAN_COLUMNS = ("clean", "gt", "mean", "target")


def list_images(root: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """The image files under ``root``, sorted.

    Files are images by suffix (:func:`amsnet.data.io.is_image_file`); ``README.md``,
    ``MANIFEST.csv``, ``pairs.csv`` and hidden files or folders (name starting with ``.``) are
    skipped.

    Args:
        root: a folder.
        recursive: also look in sub-folders.

    Returns:
        Paths sorted by their path relative to ``root`` (``/``-separated), so the order is the
        same on every platform.

    Raises:
        DataError: ``root`` is missing, not a folder, or holds no image.
    """
    folder = Path(root)
    if not folder.exists():
        raise DataError(f"image folder {folder} does not exist; check the path")
    if not folder.is_dir():
        raise DataError(f"{folder} is not a folder; give the folder that holds the images")
    candidates = folder.rglob("*") if recursive else folder.iterdir()
    found = []
    for path in candidates:
        relative = path.relative_to(folder)
        if any(part.startswith(".") for part in relative.parts[:-1]):
            continue
        if is_image_file(path) and path.is_file():
            found.append((relative.as_posix(), path))
    if not found:
        where = "or its sub-folders " if recursive else ""
        raise DataError(
            f"no images in {folder} {where}(looked for suffixes png, jpg, jpeg, tif, tiff, "
            "bmp, webp); check the path"
        )
    return [path for _, path in sorted(found)]


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


def _draw_origin(height: int, width: int, size: int, generator: torch.Generator) -> tuple[int, int]:
    top = int(torch.randint(0, max(height - size, 0) + 1, (1,), generator=generator))
    left = int(torch.randint(0, max(width - size, 0) + 1, (1,), generator=generator))
    return top, left


def _crop_array(source: np.ndarray, top: int, left: int, size: int) -> np.ndarray:
    """``size x size`` crop of an ``(H, W, C)`` array, reflect-padded where the image ends."""
    block = np.asarray(source[top : top + size, left : left + size])
    height, width = block.shape[:2]
    if height < size or width < size:
        block = block[np.ix_(_reflect_indices(height, size), _reflect_indices(width, size))]
    return block


def _crop_tensor(pixels: torch.Tensor, top: int, left: int, size: int) -> torch.Tensor:
    """``size x size`` crop of a ``(C, H, W)`` tensor, reflect-padded where the image ends."""
    block = pixels[:, top : top + size, left : left + size]
    height, width = block.shape[1:]
    if height < size or width < size:
        rows = torch.from_numpy(_reflect_indices(height, size))
        columns = torch.from_numpy(_reflect_indices(width, size))
        block = block.index_select(1, rows).index_select(2, columns)
    return block


def _check_positive(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


def _check_seed(seed: Any) -> None:
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ConfigError(f"seed must be a non-negative integer, got {seed!r}")


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


class NoisyFolder(Dataset):
    """Random crops of the noisy images of a folder, for self-supervised training.

    See the module docstring for the sampling, seeding, padding and caching rules.

    Args:
        root: folder of noisy images (no clean images needed).
        crop_size: side of the square crops; a multiple of ``pd_factor``.
        pd_factor: the pixel-shuffle factor the crops will be split with (AMSNet trains with
            5; 160 = 32 x 5).
        crops_per_epoch: ``len(dataset)``.
        seed: non-negative integer; with the epoch and item index it fixes every crop.
        horizontal_flip: mirror left-right with probability 1/2.
        vertical_flip: mirror top-bottom with probability 1/2.
        rotate: turn by 0, 90, 180 or 270 degrees, each with probability 1/4.
        sampling: ``"area"`` or ``"uniform"``: how an item picks its image.
        recursive: also use images in sub-folders.
        memory_cache_bytes: budget of decoded pixels kept in memory per process (0 disables).
        cache_dir: if given, decode every image once into a memory-mapped file there (see
            :class:`DecodedImageCache`) instead of the in-memory cache.

    Items: float32 tensors ``(3, crop_size, crop_size)`` in ``[0, 1]``.

    Example:
        >>> dataset = NoisyFolder("noisy/", crop_size=160, pd_factor=5)  # doctest: +SKIP
        >>> dataset.set_epoch(3); dataset[0].shape  # doctest: +SKIP
        torch.Size([3, 160, 160])
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        crop_size: int = 160,
        pd_factor: int = 1,
        crops_per_epoch: int = 10_000,
        seed: int = 0,
        horizontal_flip: bool = True,
        vertical_flip: bool = True,
        rotate: bool = False,
        sampling: str = "area",
        recursive: bool = True,
        memory_cache_bytes: int = 2 << 30,
        cache_dir: str | os.PathLike[str] | None = None,
    ) -> None:
        _check_positive("crop_size", crop_size)
        _check_positive("pd_factor", pd_factor)
        _check_positive("crops_per_epoch", crops_per_epoch)
        _check_seed(seed)
        if crop_size % pd_factor:
            lower = crop_size - crop_size % pd_factor
            raise ConfigError(
                f"crop_size {crop_size} is not a multiple of the pixel-shuffle factor "
                f"{pd_factor}; use {lower or pd_factor} or {lower + pd_factor}"
            )
        if sampling not in SAMPLING_MODES:
            raise ConfigError(f"sampling must be one of {SAMPLING_MODES}, got {sampling!r}")
        if isinstance(memory_cache_bytes, bool) or not isinstance(memory_cache_bytes, int):
            raise ConfigError(f"memory_cache_bytes must be an integer, got {memory_cache_bytes!r}")
        if memory_cache_bytes < 0:
            raise ConfigError(f"memory_cache_bytes must be >= 0, got {memory_cache_bytes}")
        self.root = Path(root)
        self.paths = list_images(self.root, recursive=recursive)
        self.crop_size = crop_size
        self.pd_factor = pd_factor
        self.crops_per_epoch = crops_per_epoch
        self.seed = seed
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rotate = rotate
        self.sampling = sampling
        self.memory_cache_bytes = memory_cache_bytes
        self.epoch = 0
        self.decoded_cache: DecodedImageCache | None = None
        if cache_dir is not None:
            self.decoded_cache = DecodedImageCache.open_or_build(self.root, self.paths, cache_dir)
            areas = self.decoded_cache.areas()
        else:
            areas = [image_area(path) for path in self.paths] if sampling == "area" else []
        weights = areas if sampling == "area" else [1] * len(self.paths)
        self._weights = torch.tensor(weights, dtype=torch.float64)
        self._memory: OrderedDict[int, np.ndarray] = OrderedDict()
        self._memory_used = 0

    def __len__(self) -> int:
        return self.crops_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops the next items are (call before each epoch)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def __getitem__(self, index: int) -> torch.Tensor:
        if index < 0:
            raise IndexError(f"NoisyFolder index must be >= 0, got {index}")
        epoch = self.epoch + index // self.crops_per_epoch
        generator = item_generator(self.seed, epoch, index % self.crops_per_epoch)
        number = int(torch.multinomial(self._weights, 1, generator=generator))
        source = self._source(number)
        top, left = _draw_origin(source.shape[0], source.shape[1], self.crop_size, generator)
        crop = _crop_array(source, top, left, self.crop_size)
        # Every item draws all augmentations, used or not, so switching one off does not
        # change the others.
        flips = torch.rand(2, generator=generator) < 0.5
        turns = int(torch.randint(0, 4, (1,), generator=generator))
        if self.horizontal_flip and flips[0]:
            crop = crop[:, ::-1]
        if self.vertical_flip and flips[1]:
            crop = crop[::-1]
        if self.rotate and turns:
            crop = np.rot90(crop, k=turns)
        return as_rgb(from_integer(crop))

    def _source(self, number: int) -> np.ndarray:
        """``(H, W, C)`` integer pixels of image ``number`` (from a cache when possible)."""
        if self.decoded_cache is not None:
            return self.decoded_cache.image(number)
        cached = self._memory.get(number)
        if cached is not None:
            self._memory.move_to_end(number)
            return cached
        array = read_array(self.paths[number])
        if array.nbytes <= self.memory_cache_bytes:
            self._memory[number] = array
            self._memory_used += array.nbytes
            while self._memory_used > self.memory_cache_bytes:
                _, evicted = self._memory.popitem(last=False)
                self._memory_used -= evicted.nbytes
        return array

    def __getstate__(self) -> dict[str, Any]:
        # Workers started by pickling (spawn) begin with an empty cache instead of a copy.
        state = self.__dict__.copy()
        state["_memory"] = OrderedDict()
        state["_memory_used"] = 0
        return state


class PairedFolder(Dataset):
    """Noisy/clean image pairs matched by a name rule, for evaluation.

    Args:
        root: folder of the noisy images (and, except for ``rule="folders"``, the clean ones).
        rule: ``"polyu"``, ``"cc"``, ``"regex"``, ``"folders"`` or ``"csv"``:

            * ``"polyu"``: ``X_real.JPG`` / ``X_Real.JPG`` with ``X_mean.JPG`` (suffix and
              marker case-insensitive, ``.jpg`` or ``.jpeg``), in the same folder;
            * ``"cc"``: ``X_real.png`` with ``X_mean.png``;
            * ``"regex"``: ``noisy_pattern`` and ``clean_pattern`` are regular expressions with
              a group named ``key``, matched against the whole path relative to ``root``
              (``/``-separated, suffix included); equal keys pair;
            * ``"folders"``: ``root`` holds the noisy and ``clean_root`` the clean images under
              the same relative paths (the suffix may differ);
            * ``"csv"``: ``pairs_csv`` (default ``root/pairs.csv``) has a ``noisy`` column and a
              ``clean``, ``gt``, ``mean`` or ``target`` column of paths relative to its folder.
        clean_root: the clean folder for ``rule="folders"``.
        noisy_pattern: for ``rule="regex"``.
        clean_pattern: for ``rule="regex"``.
        pairs_csv: for ``rule="csv"``.
        strict: a noisy image without a clean partner raises :class:`DataError` listing all
            of them; with ``strict=False`` they are skipped with a logged warning.
        crop_size: ``None`` (default) for full images, else a random square crop with the
            same position in both images (reflect-padded if the image is smaller).
        seed: with the epoch and index, fixes the crops.
        recursive: also pair images in sub-folders.

    Items: ``{"noisy": (3, H, W), "clean": (3, H, W), "name": str}``, float32 in ``[0, 1]``;
    ``name`` is the noisy file's path relative to ``root`` without its suffix. Grayscale
    images are repeated to three channels. ``pairs`` holds the ``(noisy, clean)`` paths.
    """

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        rule: str = "polyu",
        clean_root: str | os.PathLike[str] | None = None,
        noisy_pattern: str | None = None,
        clean_pattern: str | None = None,
        pairs_csv: str | os.PathLike[str] | None = None,
        strict: bool = True,
        crop_size: int | None = None,
        seed: int = 0,
        recursive: bool = True,
    ) -> None:
        if rule not in PAIR_RULES:
            raise ConfigError(f"rule must be one of {PAIR_RULES}, got {rule!r}")
        if crop_size is not None:
            _check_positive("crop_size", crop_size)
        _check_seed(seed)
        self.root = Path(root)
        self.rule = rule
        self.strict = strict
        self.crop_size = crop_size
        self.seed = seed
        self.epoch = 0
        if rule in ("polyu", "cc", "regex"):
            matched, unmatched = self._match_patterns(rule, noisy_pattern, clean_pattern, recursive)
            name_root = self.root
        elif rule == "folders":
            if clean_root is None:
                raise ConfigError('rule="folders" needs clean_root, the folder of clean images')
            matched, unmatched = self._match_folders(Path(clean_root), recursive)
            name_root = self.root
        else:
            csv_path = Path(pairs_csv) if pairs_csv is not None else self.root / "pairs.csv"
            matched, unmatched = self._match_csv(csv_path)
            name_root = csv_path.parent
        if unmatched:
            listed = ", ".join(unmatched[:10]) + (" ..." if len(unmatched) > 10 else "")
            message = (
                f"{len(unmatched)} noisy image(s) in {self.root} have no clean partner under "
                f'rule "{rule}": {listed}'
            )
            if strict:
                raise DataError(
                    f"{message}; add the missing clean files, fix the names, or pass "
                    "strict=False to skip them"
                )
            logger.warning("%s; skipped", message)
        if not matched:
            raise DataError(
                f'no noisy/clean pairs found in {self.root} under rule "{rule}"; check the '
                "folder and the rule (polyu: X_real.JPG + X_mean.JPG, cc: X_real.png + "
                "X_mean.png)"
            )
        self.pairs: list[tuple[Path, Path]] = sorted(matched)
        self.names = [_relative_stem(noisy, name_root) for noisy, _ in self.pairs]

    def _match_patterns(
        self, rule: str, noisy_pattern: str | None, clean_pattern: str | None, recursive: bool
    ) -> tuple[list[tuple[Path, Path]], list[str]]:
        if rule == "regex":
            if noisy_pattern is None or clean_pattern is None:
                raise ConfigError(
                    'rule="regex" needs noisy_pattern and clean_pattern, regular expressions '
                    r'with a group named key, e.g. r"(?P<key>.+)_noisy\.png"'
                )
            patterns = [_compile(noisy_pattern, 0), _compile(clean_pattern, 0)]
        else:
            noisy_text, clean_text = _RULE_PATTERNS[rule]
            patterns = [_compile(noisy_text, re.IGNORECASE), _compile(clean_text, re.IGNORECASE)]
        noisy_files: dict[str, Path] = {}
        clean_files: dict[str, Path] = {}
        for path in list_images(self.root, recursive=recursive):
            relative = path.relative_to(self.root).as_posix()
            for pattern, found in zip(patterns, (noisy_files, clean_files), strict=True):
                match = pattern.fullmatch(relative)
                if match is None:
                    continue
                key = match.group("key")
                if key in found:
                    raise DataError(
                        f"{found[key]} and {path} both match the same pair key {key!r}; "
                        "remove one of them"
                    )
                found[key] = path
                break
        matched = [
            (noisy, clean_files[key]) for key, noisy in noisy_files.items() if key in clean_files
        ]
        unmatched = sorted(
            noisy.relative_to(self.root).as_posix()
            for key, noisy in noisy_files.items()
            if key not in clean_files
        )
        return matched, unmatched

    def _match_folders(
        self, clean_root: Path, recursive: bool
    ) -> tuple[list[tuple[Path, Path]], list[str]]:
        clean_files: dict[str, Path] = {}
        for path in list_images(clean_root, recursive=recursive):
            key = path.relative_to(clean_root).with_suffix("").as_posix()
            if key in clean_files:
                raise DataError(
                    f"{clean_files[key]} and {path} have the same name up to the suffix; "
                    "remove one of them"
                )
            clean_files[key] = path
        matched, unmatched = [], []
        for noisy in list_images(self.root, recursive=recursive):
            key = noisy.relative_to(self.root).with_suffix("").as_posix()
            if key in clean_files:
                matched.append((noisy, clean_files[key]))
            else:
                unmatched.append(noisy.relative_to(self.root).as_posix())
        return matched, unmatched

    def _match_csv(self, csv_path: Path) -> tuple[list[tuple[Path, Path]], list[str]]:
        if not csv_path.is_file():
            raise DataError(f"pairs file {csv_path} does not exist; check the path")
        try:
            with open(csv_path, newline="", encoding="utf-8") as handle:
                rows = list(csv.DictReader(handle))
                columns = rows[0].keys() if rows else []
        except (OSError, UnicodeDecodeError, csv.Error) as error:
            raise DataError(f"cannot read the pairs file {csv_path} ({error})") from error
        clean_column = next((name for name in _CLEAN_COLUMNS if name in columns), None)
        if "noisy" not in columns or clean_column is None:
            raise DataError(
                f"{csv_path} needs a header with a 'noisy' column and one of "
                f"{', '.join(_CLEAN_COLUMNS)}; found {list(columns)}"
            )
        folder = csv_path.parent
        matched, unmatched = [], []
        for row in rows:
            noisy = folder / row["noisy"]
            clean = folder / row[clean_column]
            if not noisy.is_file():
                raise DataError(
                    f"{csv_path} lists {row['noisy']}, which does not exist in {folder}"
                )
            if clean.is_file():
                matched.append((noisy, clean))
            else:
                unmatched.append(f"{row['noisy']} (missing {row[clean_column]})")
        return matched, unmatched

    def __len__(self) -> int:
        return len(self.pairs)

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose random crops the next items use (only with ``crop_size``)."""
        if isinstance(epoch, bool) or not isinstance(epoch, int) or epoch < 0:
            raise ConfigError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def __getitem__(self, index: int) -> dict[str, Any]:
        noisy_path, clean_path = self.pairs[index]
        noisy = read_image(noisy_path)
        clean = read_image(clean_path)
        if noisy.pixels.shape[1:] != clean.pixels.shape[1:]:
            raise DataError(
                f"{noisy_path} is {noisy.height}x{noisy.width} but its clean partner "
                f"{clean_path} is {clean.height}x{clean.width}; the pair must have one size"
            )
        if noisy.orientation != clean.orientation:
            logger.warning(
                "%s has EXIF orientation %d and %s has %d: check that the pair is aligned",
                noisy_path,
                noisy.orientation,
                clean_path,
                clean.orientation,
            )
        noisy_pixels, clean_pixels = as_rgb(noisy.pixels), as_rgb(clean.pixels)
        if self.crop_size is not None:
            generator = item_generator(self.seed, self.epoch, index)
            top, left = _draw_origin(noisy.height, noisy.width, self.crop_size, generator)
            noisy_pixels = _crop_tensor(noisy_pixels, top, left, self.crop_size)
            clean_pixels = _crop_tensor(clean_pixels, top, left, self.crop_size)
        return {"noisy": noisy_pixels, "clean": clean_pixels, "name": self.names[index]}


def _compile(pattern: str, flags: int) -> re.Pattern[str]:
    try:
        compiled = re.compile(pattern, flags)
    except re.error as error:
        raise ConfigError(f"invalid regular expression {pattern!r}: {error}") from error
    if "key" not in compiled.groupindex:
        raise ConfigError(
            f"pattern {pattern!r} has no group named key; write the shared part as (?P<key>...)"
        )
    return compiled


def _relative_stem(path: Path, root: Path) -> str:
    try:
        relative = path.relative_to(root)
    except ValueError:
        relative = Path(path.name)
    return relative.with_suffix("").as_posix()
