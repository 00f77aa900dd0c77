"""Folders of images as training data: image listing and unpaired noisy crops.

:func:`list_images` lists the images of a folder. :class:`NoisyFolder` feeds self-supervised
training: it is :class:`amsnet.data.training_crops.TrainingCrops` (whose docstring gives the
sampling, seeding, padding and augmentation rules) over the folder's files
(:class:`amsnet.data.sources.FileImages`: decoded images kept in memory up to
``memory_cache_bytes``, or decoded once into a memory-mapped file with ``cache_dir``).

Noisy/clean pairs for evaluation are in :mod:`amsnet.data.pairs`.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Sequence
from pathlib import Path

from amsnet.data.io import is_image_file
from amsnet.data.sources import FileImages
from amsnet.data.training_crops import check_crop_settings, TrainingCrops
from amsnet.errors import DataError


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


class NoisyFolder(TrainingCrops):
    """Random crops of the noisy images of a folder, for self-supervised training.

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
            :class:`amsnet.data.cache.DecodedImageCache`) instead of the in-memory cache.

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
        # The settings first: a bad one must not wait for a folder's listing or cache build.
        check_crop_settings(crop_size, pd_factor, crops_per_epoch, seed, sampling)
        self.root = Path(root)
        self.paths = list_images(self.root, recursive=recursive)
        images = FileImages(
            self.paths, self.root, cache_dir=cache_dir, memory_cache_bytes=memory_cache_bytes
        )
        super().__init__(
            images,
            crop_size=crop_size,
            pd_factor=pd_factor,
            crops_per_epoch=crops_per_epoch,
            seed=seed,
            horizontal_flip=horizontal_flip,
            vertical_flip=vertical_flip,
            rotate=rotate,
            sampling=sampling,
        )

    @property
    def decoded_cache(self):
        """The memory-mapped cache of the decoded images, or ``None``."""
        return self.noisy.decoded_cache

    @property
    def memory_cache_bytes(self) -> int:
        return self.noisy.memory_cache_bytes

    @property
    def _memory(self):
        return self.noisy._memory
