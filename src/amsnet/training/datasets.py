"""Training crops from every kind of ``data.train`` source, and the sampler that feeds them.

:class:`TrainingCrops` cuts random square crops out of a list of images, or out of aligned
noisy/clean pairs (same position, same flips and turns in both). It follows
:class:`amsnet.data.folders.NoisyFolder`'s rules exactly (the test suite checks that both give
the same crops of a folder): the image is drawn by area (or uniformly), item ``i`` draws from
a generator seeded with ``(seed, i // crops_per_epoch, i % crops_per_epoch)``, images smaller
than the crop are reflect-padded, flips and quarter turns are drawn for every item whether used
or not. Unlike ``NoisyFolder`` it takes explicit lists of files, which SIDD Medium needs (its
scene folders hold the noisy image next to its ground truth) and pairs need, or images held in
memory (synthetic camera noise, made once per photo).

:class:`StepSampler` gives step ``s`` of process ``rank`` the global crop indices
``(s * world_size + rank) * batch_size + j``, ``j < batch_size``: the crops of a step do not
depend on the number of DataLoader workers, each process of a multi-GPU run takes its own share,
and a run resumed at step ``N`` continues with the crops the uninterrupted run would have used.
(``torch.utils.data.DistributedSampler`` shards a permutation per epoch instead, and cannot
resume in the middle of one.)

:func:`build_train_dataset` turns the ``data.train`` section into a :class:`TrainingCrops`.
Self-supervised methods get noisy crops only: clean images are not even read for them.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Protocol

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler

from amsnet.config import SKIMAGE_SOURCE, TrainDataConfig
from amsnet.data.cache import DecodedImageCache, RecentImages
from amsnet.data.crops import (
    check_epoch,
    check_positive,
    check_seed,
    crop_array,
    item_generator,
    random_crop_origin,
)
from amsnet.data.io import as_rgb, from_integer, image_area, read_array
from amsnet.errors import ConfigError, DataError

log = logging.getLogger(__name__)

SKIMAGE_TRAIN_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "rocket")
"""Photos bundled with scikit-image used by ``source: skimage`` for training."""
SKIMAGE_VAL_PHOTOS: tuple[str, ...] = ("astronaut",)
"""Photos bundled with scikit-image used by ``data.val`` ``dataset: camera, root: skimage``;
none of them is a training photo, so the supervised reference is not scored on what it saw."""


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


def _to_tensor(crop: np.ndarray) -> torch.Tensor:
    """An ``(S, S, C)`` crop as a float32 ``(3, S, S)`` tensor in ``[0, 1]``."""
    if crop.dtype == np.float32:
        return as_rgb(torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1))))
    return as_rgb(from_integer(crop))


class TrainingCrops(Dataset):
    """Random square crops of images, or of aligned noisy/clean pairs (see the module doc).

    Args:
        noisy: the noisy images.
        clean: their ground truth (same sizes, image by image), or ``None`` for noisy crops
            only.
        crop_size: side of the crops; a multiple of ``pd_factor``.
        pd_factor: the pixel-shuffle factor the crops will be split with.
        crops_per_epoch: ``len(dataset)``; indices past it continue into the next epochs.
        seed: with the epoch and the item index it fixes every crop.
        horizontal_flip: mirror left-right with probability 1/2.
        vertical_flip: mirror top-bottom with probability 1/2.
        rotate: turn by 0, 90, 180 or 270 degrees, each with probability 1/4.
        sampling: ``"area"`` (an image is drawn proportionally to its area) or ``"uniform"``.

    Items: float32 ``(3, crop_size, crop_size)`` tensors in ``[0, 1]``, or with ``clean``
    ``{"noisy": ..., "clean": ...}`` of two such tensors.

    Example:
        >>> images = ArrayImages([np.zeros((40, 50, 3), np.float32)], ["zeros"])
        >>> TrainingCrops(images, crop_size=20, pd_factor=5)[7].shape
        torch.Size([3, 20, 20])
    """

    def __init__(
        self,
        noisy: ImageSource,
        clean: ImageSource | None = None,
        *,
        crop_size: int = 160,
        pd_factor: int = 1,
        crops_per_epoch: int = 10_000,
        seed: int = 0,
        horizontal_flip: bool = True,
        vertical_flip: bool = True,
        rotate: bool = False,
        sampling: str = "area",
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
        if sampling not in ("area", "uniform"):
            raise ConfigError(f"sampling must be 'area' or 'uniform', got {sampling!r}")
        if clean is not None and len(clean) != len(noisy):
            raise DataError(
                f"{len(noisy)} noisy images but {len(clean)} clean ones; every noisy image "
                "needs its ground truth"
            )
        self.noisy = noisy
        self.clean = clean
        self.crop_size = crop_size
        self.pd_factor = pd_factor
        self.crops_per_epoch = crops_per_epoch
        self.seed = seed
        self.horizontal_flip = horizontal_flip
        self.vertical_flip = vertical_flip
        self.rotate = rotate
        self.sampling = sampling
        self.epoch = 0
        weights = noisy.areas() if sampling == "area" else [1] * len(noisy)
        self._weights = torch.tensor(weights, dtype=torch.float64)

    def __len__(self) -> int:
        return self.crops_per_epoch

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose crops items ``0 .. len - 1`` are."""
        check_epoch(epoch)
        self.epoch = epoch

    def __getitem__(self, index: int) -> torch.Tensor | dict[str, torch.Tensor]:
        if index < 0:
            raise IndexError(f"TrainingCrops index must be >= 0, got {index}")
        epoch = self.epoch + index // self.crops_per_epoch
        generator = item_generator(self.seed, epoch, index % self.crops_per_epoch)
        number = int(torch.multinomial(self._weights, 1, generator=generator))
        sources = [self.noisy.image(number)]
        if self.clean is not None:
            sources.append(self.clean.image(number))
            if sources[1].shape[:2] != sources[0].shape[:2]:
                raise DataError(
                    f"{self.noisy.name(number)} is {sources[0].shape[1]}x{sources[0].shape[0]} "
                    f"but its ground truth {self.clean.name(number)} is "
                    f"{sources[1].shape[1]}x{sources[1].shape[0]}; a pair must have one size"
                )
        height, width = sources[0].shape[:2]
        top, left = random_crop_origin(height, width, self.crop_size, generator)
        crops = [crop_array(source, top, left, self.crop_size) for source in sources]
        # Every item draws all augmentations, used or not, so switching one off does not
        # change the others (NoisyFolder's rule).
        flips = torch.rand(2, generator=generator) < 0.5
        turns = int(torch.randint(0, 4, (1,), generator=generator))
        if self.horizontal_flip and flips[0]:
            crops = [crop[:, ::-1] for crop in crops]
        if self.vertical_flip and flips[1]:
            crops = [crop[::-1] for crop in crops]
        if self.rotate and turns:
            crops = [np.rot90(crop, k=turns) for crop in crops]
        tensors = [_to_tensor(crop) for crop in crops]
        if self.clean is None:
            return tensors[0]
        return {"noisy": tensors[0], "clean": tensors[1]}


class StepSampler(Sampler[int]):
    """Global crop indices, step by step, for one process (see the module docstring).

    Args:
        start_step: the first step to serve (a resumed run's step).
        total_steps: the run's number of steps.
        batch_size: crops per step and process.
        rank: this process's rank.
        world_size: number of processes.

    Example:
        >>> list(StepSampler(1, 3, 2, rank=1, world_size=2))
        [6, 7, 10, 11]
    """

    def __init__(
        self,
        start_step: int,
        total_steps: int,
        batch_size: int,
        *,
        rank: int = 0,
        world_size: int = 1,
    ) -> None:
        if not 0 <= rank < world_size:
            raise ConfigError(f"rank {rank} is outside 0..{world_size - 1}")
        self.start_step = start_step
        self.total_steps = total_steps
        self.batch_size = batch_size
        self.rank = rank
        self.world_size = world_size

    def __iter__(self) -> Iterator[int]:
        for step in range(self.start_step, self.total_steps):
            first = (step * self.world_size + self.rank) * self.batch_size
            yield from range(first, first + self.batch_size)

    def __len__(self) -> int:
        return max(self.total_steps - self.start_step, 0) * self.batch_size


def skimage_photos(names: Sequence[str]) -> list[tuple[str, torch.Tensor]]:
    """Photos bundled with scikit-image as ``(name, (3, H, W) float32 in [0, 1])``.

    Raises:
        ConfigError: scikit-image is not installed.
    """
    try:
        from skimage import data
    except ImportError:
        raise ConfigError(
            "source 'skimage' uses the photographs bundled with scikit-image; install it with "
            "pip install 'amsnet[demo]' or give a folder of clean images"
        ) from None
    return [(name, from_integer(np.ascontiguousarray(getattr(data, name)()))) for name in names]


def clean_photos(source: str) -> list[tuple[str, torch.Tensor]]:
    """The clean images of ``source`` (a folder, or ``"skimage"`` for the training photos)."""
    if source == SKIMAGE_SOURCE:
        return skimage_photos(SKIMAGE_TRAIN_PHOTOS)
    from amsnet.data.folders import list_images
    from amsnet.data.io import read_image

    root = Path(source)
    return [
        (path.relative_to(root).with_suffix("").as_posix(), as_rgb(read_image(path).pixels))
        for path in list_images(root)
    ]


def with_camera_noise(
    photos: Sequence[tuple[str, torch.Tensor]], level: str, seed: int
) -> list[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, noisy, clean)`` per photo: synthetic camera noise drawn once per photo.

    The noise of a photo depends only on ``(seed, name)``
    (:func:`amsnet.data.noise.image_seed`), and the clean image is the photo sent through the
    same camera processing without noise, so the pair differs by the noise alone.
    """
    from amsnet.data.camera_noise import camera_noise
    from amsnet.data.noise import image_seed

    triples = []
    for name, photo in photos:
        noisy, clean, _ = camera_noise(
            photo[None], seed=image_seed(seed, name), iso_like_level=level
        )
        triples.append((name, noisy[0], clean[0]))
    return triples


def build_train_dataset(
    config: TrainDataConfig,
    *,
    pd_factor: int,
    seed: int,
    with_clean: bool,
    device: str = "auto",
) -> TrainingCrops:
    """The training crops of a ``data.train`` section.

    Args:
        config: the section.
        pd_factor: the PD factor the crops must be a multiple of (1 for no PD).
        seed: the experiment's seed.
        with_clean: also serve the ground truth (the supervised method) or the teacher's
            outputs (``distillation``); self-supervised methods pass False and never get a
            clean image.
        device: where the teacher of a ``distillation`` source runs.

    Raises:
        DataError: a missing folder or file, or a folder in the wrong layout; the message
            names the config key and the path.
    """
    noisy, clean = _sources(config, with_clean, seed, device)
    return TrainingCrops(
        noisy,
        clean,
        crop_size=config.crop_size,
        pd_factor=pd_factor,
        crops_per_epoch=config.crops_per_epoch,
        seed=seed,
        horizontal_flip=config.flips,
        vertical_flip=config.flips,
        rotate=config.rotate,
        sampling=config.sampling,
    )


def _sources(
    config: TrainDataConfig, with_clean: bool, seed: int, device: str
) -> tuple[ImageSource, ImageSource | None]:
    key = "source" if config.kind == "synthetic_camera" else "root"
    try:
        if config.kind == "distillation":
            from amsnet.training.distillation import teacher_regions

            regions = teacher_regions(config, seed=seed, device=device)
            return regions.noisy, regions.targets if with_clean else None
        return _open_sources(config, with_clean)
    except DataError as error:
        raise DataError(f"data.train.{key} ({getattr(config, key)}): {error}") from None


def _open_sources(
    config: TrainDataConfig, with_clean: bool
) -> tuple[ImageSource, ImageSource | None]:
    cache = Path(config.cache_dir) if config.cache_dir is not None else None
    if config.kind == "synthetic_camera":
        assert config.source is not None  # checked by TrainDataConfig
        triples = with_camera_noise(
            clean_photos(config.source), config.noise_level, config.noise_seed
        )
        names = [name for name, _, _ in triples]
        noisy = ArrayImages([_hwc(noisy) for _, noisy, _ in triples], names)
        clean = ArrayImages([_hwc(target) for _, _, target in triples], names)
        log.info(
            "%d photos of %s with '%s' synthetic camera noise",
            len(names),
            config.source,
            config.noise_level,
        )
        return noisy, clean if with_clean else None
    assert config.root is not None  # checked by TrainDataConfig
    root = Path(config.root)
    if config.kind == "noisy_folder":
        from amsnet.data.folders import list_images

        paths = list_images(root, include=config.include)
        return _files(paths, root, cache, "noisy"), None
    if config.kind == "sidd_medium":
        from amsnet.data.sidd import sidd_medium_files

        if not with_clean:
            paths = sidd_medium_files(root, noisy_only=True, strict=config.strict)
            return _files(paths, root, cache, "noisy"), None
        pairs = sidd_medium_files(root, noisy_only=False, strict=config.strict)
    else:
        from amsnet.data.pairs import PairedFolder

        pairs = PairedFolder(
            root,
            rule=config.rule,
            clean_root=config.clean_root,
            noisy_pattern=config.noisy_pattern,
            clean_pattern=config.clean_pattern,
        ).pairs
    noisy = _files([n for n, _ in pairs], root, cache, "noisy")
    if not with_clean:
        return noisy, None
    return noisy, _files([c for _, c in pairs], root, cache, "clean")


def _files(paths: Sequence[Path], root: Path, cache: Path | None, part: str) -> FileImages:
    # Noisy and clean files share a root, so their memory-mapped caches get separate folders.
    return FileImages(paths, root, cache_dir=None if cache is None else cache / part)


def _hwc(image: torch.Tensor) -> np.ndarray:
    """``(3, H, W)`` float tensor -> ``(H, W, 3)`` float32 array (what :class:`ArrayImages`
    holds)."""
    return np.ascontiguousarray(image.permute(1, 2, 0).numpy().astype(np.float32, copy=False))
