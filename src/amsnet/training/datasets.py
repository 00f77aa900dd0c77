"""Training crops from every kind of ``data.train`` source, and the sampler that feeds them.

The crops themselves are :class:`amsnet.data.training_crops.TrainingCrops` over an image
source (:mod:`amsnet.data.sources`): explicit lists of files, which SIDD Medium needs (its
scene folders hold the noisy image next to its ground truth) and pairs need, or images held in
memory (synthetic camera noise, made once per photo; a teacher's outputs).

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
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Sampler

from amsnet.config import TrainDataConfig
from amsnet.data.photos import clean_photos, with_camera_noise
from amsnet.data.sources import ArrayImages, FileImages, ImageSource
from amsnet.data.training_crops import TrainingCrops
from amsnet.errors import ConfigError, DataError

__all__ = [
    "ArrayImages",
    "FileImages",
    "ImageSource",
    "StepSampler",
    "TrainingCrops",
    "build_train_dataset",
]

log = logging.getLogger(__name__)


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
        downscale_factors=tuple(config.downscale_factors),
        noise_scales=tuple(config.noise_scales),
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
