"""Folders of images as training data: image listing and unpaired noisy crops.

:func:`list_images` lists the images of a folder. :class:`NoisyFolder` feeds self-supervised
training. Every item is one random crop of one random image of the folder:

* The image is drawn with probability proportional to its area (``sampling="area"``, the
  default), so every pixel of the collection is about equally likely to be trained on whatever
  the image sizes; this is also what the official AMSNet pipeline amounts to, since it cuts
  every image into equal 512x512 tiles first. ``sampling="uniform"`` draws every image equally
  often instead.
* Item ``i`` of epoch ``e`` draws from a fresh generator seeded with ``(seed, e, i)``
  (:func:`amsnet.data.crops.item_generator`), so a crop does not depend on the number of
  DataLoader workers or on which worker makes it, and resuming at step ``N`` gives the same
  crops as the uninterrupted run. Call :meth:`NoisyFolder.set_epoch` before iterating over each
  epoch; indices past ``len(dataset)`` continue into the following epochs, so a sampler of
  global step indices works as well. (Workers kept with ``persistent_workers=True`` do not see
  ``set_epoch``: use global indices there.)
* An image smaller than the crop is reflect-padded at the bottom and right (the same side as
  :func:`amsnet.ops.pad_to_multiple`), the crop then starts at 0 along that side.
* Augmentation: horizontal and vertical flips (on by default, as in the official AMSNet
  configs) and quarter turns (off by default: the official configs do not rotate, and real
  noise is slightly more correlated along rows than along columns). Each is switchable.
* Grayscale images are repeated to three channels; alpha is ignored.

Decoding a photo costs far more than cutting a crop from it, so decoded images are kept in
memory (integer pixels, per process, least recently used first out) up to
``memory_cache_bytes``. Folders too large for that can be decoded once into a memory-mapped
file (``cache_dir``, :class:`amsnet.data.cache.DecodedImageCache`), which the OS pages in crop
by crop; see ``benchmarks/bench_data_pipeline.py`` for the figures.

Noisy/clean pairs for evaluation are in :mod:`amsnet.data.pairs`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from amsnet.data.cache import DecodedImageCache, RecentImages
from amsnet.data.crops import (
    check_epoch,
    check_positive,
    check_seed,
    crop_array,
    item_generator,
    random_crop_origin,
)
from amsnet.data.io import as_rgb, from_integer, image_area, is_image_file, read_array
from amsnet.errors import ConfigError, DataError

SAMPLING_MODES: tuple[str, ...] = ("area", "uniform")


def list_images(
    root: str | os.PathLike[str],
    recursive: bool = True,
    include: Sequence[str] | None = None,
) -> list[Path]:
    """The image files under ``root``, sorted.

    Files are images by suffix (:func:`amsnet.data.io.is_image_file`); ``README.md``,
    ``MANIFEST.csv``, ``pairs.csv`` and hidden files or folders (name starting with ``.``) are
    skipped.

    Args:
        root: a folder.
        recursive: also look in sub-folders.
        include: keep only files whose ``/``-separated path relative to ``root`` matches one of
            these glob patterns (``fnmatch`` rules, ``*`` also crosses ``/``), e.g.
            ``["polyu/OriginalImages/*_Real.JPG", "rni15/*"]``; ``None`` keeps every image.

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
        if include is not None and not any(
            fnmatch.fnmatchcase(relative.as_posix(), pattern) for pattern in include
        ):
            continue
        if is_image_file(path) and path.is_file():
            found.append((relative.as_posix(), path))
    if not found:
        where = "or its sub-folders " if recursive else ""
        if include is not None:
            where += f"matching {list(include)} "
        raise DataError(
            f"no images in {folder} {where}(looked for suffixes png, jpg, jpeg, tif, tiff, "
            "bmp, webp); check the path"
        )
    return [path for _, path in sorted(found)]


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
        check_positive("crop_size", crop_size)
        check_positive("pd_factor", pd_factor)
        check_positive("crops_per_epoch", crops_per_epoch)
        check_seed(seed)
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
        self._memory = RecentImages(memory_cache_bytes)

    def __len__(self) -> int:
        return self.crops_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops the next items are (call before each epoch)."""
        check_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, index: int) -> torch.Tensor:
        if index < 0:
            raise IndexError(f"NoisyFolder index must be >= 0, got {index}")
        epoch = self.epoch + index // self.crops_per_epoch
        generator = item_generator(self.seed, epoch, index % self.crops_per_epoch)
        number = int(torch.multinomial(self._weights, 1, generator=generator))
        source = self._source(number)
        top, left = random_crop_origin(source.shape[0], source.shape[1], self.crop_size, generator)
        crop = crop_array(source, top, left, self.crop_size)
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
        return self._memory.get(number, lambda: read_array(self.paths[number]))
