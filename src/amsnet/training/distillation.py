"""The training data of a distilled student: regions of a noisy pool and the teacher's output
for each, computed once and cached on disk.

A student (:class:`amsnet.methods.Distilled`) learns to reproduce its teacher's best output,
AMSNet-P-E: k branches times (1 + 8 R3 passes) backbone calls per pixel. Computing that for
every training crop at every step would cost 18 teacher passes per student step, so the teacher
denoises a fixed set of ``regions`` once (TBSN and TM-BSN distil the same way), and the student
trains on random crops inside them.

* Region ``i`` is a function of ``(seed, i)`` and the pool only: its image is drawn in
  proportion to the images' areas, its position uniformly. Images whose shorter side is below
  the training crop are left out (with a message).
* The teacher denoises each region with a margin of :data:`MARGIN` pixels of context around it
  (cut off afterwards), so region borders carry no padding artefacts.
* Each finished region is written atomically to ``cache_dir/<key>/region-NNNNNN.npz`` (noisy
  pixels as decoded, the target as float16), where ``<key>`` hashes the teacher's bytes, the
  variant, the seed, the region size and the pool's file list: a killed run resumes where it
  stopped, and a changed teacher or pool never reuses stale targets.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from amsnet.atomic import atomic_path
from amsnet.config import TrainDataConfig
from amsnet.data.images import rgb_region
from amsnet.data.io import image_size, read_integer_image
from amsnet.data.sources import ArrayImages
from amsnet.errors import DataError
from amsnet.precision import backbone_dtype, precision_name

log = logging.getLogger(__name__)

MARGIN = 16
"""Pixels of context the teacher sees on each side of a region (clipped at image borders)."""


@dataclass
class TeacherRegions:
    """Noisy regions and the teacher's outputs for them, index by index.

    Attributes:
        noisy: ``(S, S, C)`` integer arrays as decoded from the pool's files.
        targets: ``(S, S, 3)`` float32 arrays in ``[0, 1]``, the teacher's output.
        folder: where they are cached.
        computed: how many regions this call had to compute (0: all came from the cache).
    """

    noisy: ArrayImages
    targets: ArrayImages
    folder: Path
    computed: int


@dataclass(frozen=True)
class Region:
    """Where region ``number`` lies: image index, top, left, side."""

    number: int
    image: int
    top: int
    left: int
    side: int


def plan_regions(sizes: list[tuple[int, int]], count: int, side: int, seed: int) -> list[Region]:
    """``count`` square regions over images of ``sizes`` ``(height, width)``.

    Each region's image is drawn with probability proportional to its area, its side is
    ``min(side, height, width)`` and its position is uniform; region ``i`` depends on
    ``(seed, i)`` and ``sizes`` only.

    Example:
        >>> [r.side for r in plan_regions([(100, 300)], 2, 128, seed=0)]
        [100, 100]
    """
    areas = np.array([h * w for h, w in sizes], dtype=np.float64)
    weights = torch.from_numpy(areas / areas.sum())
    regions = []
    for number in range(count):
        generator = torch.Generator().manual_seed(_region_seed(seed, number))
        image = int(torch.multinomial(weights, 1, generator=generator))
        height, width = sizes[image]
        size = min(side, height, width)
        top = int(torch.randint(0, height - size + 1, (1,), generator=generator))
        left = int(torch.randint(0, width - size + 1, (1,), generator=generator))
        regions.append(Region(number, image, top, left, size))
    return regions


def teacher_regions(config: TrainDataConfig, *, seed: int, device: str = "auto") -> TeacherRegions:
    """The regions of a ``data.train.kind: distillation`` section, computing missing targets.

    Args:
        config: the section (``root``, ``include``, ``teacher``, ``teacher_variant``,
            ``regions``, ``region_size``, ``cache_dir``, ``crop_size``).
        seed: the experiment's seed (places the regions, seeds the teacher's masks).
        device: where the teacher runs.

    Raises:
        DataError: no usable image in the pool, or an unreadable image (named).
        CheckpointError: the teacher cannot be loaded.
    """
    from amsnet.data.folders import list_images
    from amsnet.inference import load_for_inference
    from amsnet.zoo import resolve_weights, weights_sha256

    assert config.root is not None and config.teacher is not None  # checked by the config
    assert config.cache_dir is not None
    root = Path(config.root)
    paths = list_images(root, include=config.include)
    sizes, usable = [], []
    for path in paths:
        height, width = image_size(path)
        if min(height, width) < config.crop_size:
            log.warning(
                "left out of distillation: %s (%dx%d) is smaller than the %d-pixel crops",
                path,
                width,
                height,
                config.crop_size,
            )
            continue
        sizes.append((height, width))
        usable.append(path)
    if not usable:
        raise DataError(
            f"no image in {root} is at least data.train.crop_size {config.crop_size} pixels on "
            "its shorter side"
        )
    teacher_file = resolve_weights(config.teacher)
    teacher = load_for_inference(teacher_file, device, config.teacher_precision)
    precision = precision_name(backbone_dtype(teacher))
    key = _cache_key(weights_sha256(teacher_file), config, precision, seed, root, usable, sizes)
    folder = Path(config.cache_dir) / f"teacher-{key}"
    regions = plan_regions(sizes, config.regions, config.region_size, seed)
    missing = [r for r in regions if not _region_file(folder, r.number).is_file()]
    if missing:
        folder.mkdir(parents=True, exist_ok=True)
        _write_manifest(folder, config, teacher_file, seed, root, usable)
        _compute(teacher, usable, missing, folder, config.teacher_variant == "E", seed)
    noisy, targets, names = [], [], []
    for region in regions:
        with np.load(_region_file(folder, region.number)) as stored:
            noisy.append(stored["noisy"])
            targets.append(stored["target"].astype(np.float32))
        names.append(f"{usable[region.image].relative_to(root).as_posix()}#{region.number}")
    log.info(
        "distillation: %d regions of %d images (%d computed now, the rest cached in %s)",
        len(regions),
        len(usable),
        len(missing),
        folder,
    )
    return TeacherRegions(
        ArrayImages(noisy, names), ArrayImages(targets, names), folder, len(missing)
    )


def _compute(
    teacher: torch.nn.Module,
    paths: list[Path],
    regions: list[Region],
    folder: Path,
    refine: bool,
    seed: int,
) -> None:
    from amsnet.inference import denoise_image

    start = time.perf_counter()
    # One decode per image: regions sorted by image.
    ordered = sorted(regions, key=lambda r: (r.image, r.number))
    current, array = -1, None
    for done, region in enumerate(ordered, start=1):
        if region.image != current:
            array = read_integer_image(paths[region.image]).array
            current = region.image
        assert array is not None
        height, width = array.shape[:2]
        top, left = max(region.top - MARGIN, 0), max(region.left - MARGIN, 0)
        bottom = min(region.top + region.side + MARGIN, height)
        right = min(region.left + region.side + MARGIN, width)
        context = rgb_region(array, slice(top, bottom), slice(left, right))
        output = denoise_image(teacher, context, refine=refine, seed=seed + region.number)
        inner = output[
            :,
            region.top - top : region.top - top + region.side,
            region.left - left : region.left - left + region.side,
        ]
        noisy = array[
            region.top : region.top + region.side, region.left : region.left + region.side
        ]
        target = inner.clamp(0, 1).permute(1, 2, 0).numpy().astype(np.float16)
        with atomic_path(_region_file(folder, region.number)) as tmp, open(tmp, "wb") as handle:
            np.savez(handle, noisy=np.ascontiguousarray(noisy), target=target)
        if done % 50 == 0 or done == len(ordered):
            elapsed = time.perf_counter() - start
            log.info(
                "teacher: %d/%d regions (%.1f s, %.2f s per region)",
                done,
                len(ordered),
                elapsed,
                elapsed / done,
            )


def _region_file(folder: Path, number: int) -> Path:
    return folder / f"region-{number:06d}.npz"


def _region_seed(seed: int, number: int) -> int:
    digest = hashlib.sha256(f"amsnet-distill-region:{seed}:{number}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & ((1 << 63) - 1)


def _cache_key(
    teacher_sha: str,
    config: TrainDataConfig,
    precision: str,
    seed: int,
    root: Path,
    paths: list[Path],
    sizes: list[tuple[int, int]],
) -> str:
    fields = {
        "teacher": teacher_sha,
        "variant": config.teacher_variant,
        "seed": seed,
        # Older caches (all fp32) keep their key.
        **({"precision": precision} if precision != "fp32" else {}),
        "region_size": config.region_size,
        "margin": MARGIN,
        "pool": [
            [p.relative_to(root).as_posix(), p.stat().st_size, h, w]
            for p, (h, w) in zip(paths, sizes, strict=True)
        ],
    }
    return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _write_manifest(
    folder: Path,
    config: TrainDataConfig,
    teacher: Path,
    seed: int,
    root: Path,
    paths: list[Path],
) -> None:
    manifest = {
        "teacher": str(teacher),
        "teacher_variant": config.teacher_variant,
        "seed": seed,
        "region_size": config.region_size,
        "root": str(root),
        "images": [p.relative_to(root).as_posix() for p in paths],
    }
    with atomic_path(folder / "manifest.json") as tmp:
        tmp.write_text(json.dumps(manifest, indent=1))


def pool_selection(
    folders: list[str | os.PathLike[str]], include: list[str] | None = None
) -> tuple[str, list[str] | None]:
    """One ``root`` and ``include`` patterns that select the images of several folders.

    ``root`` is the folders' common parent; each folder contributes ``<folder>/<pattern>``
    for every pattern of ``include`` (relative to that folder; default ``*``, everything
    below it).

    For example ``["data/polyu", "data/rni15"]`` with ``["*.png"]`` gives ``"data"`` and
    ``["polyu/*.png", "rni15/*.png"]``; one folder is its own root.

    Raises:
        DataError: no folder, or one that is not a folder (named).
    """
    if not folders:
        raise DataError("give at least one folder of noisy images (--data)")
    paths = [Path(folder) for folder in folders]
    for path in paths:
        if not path.is_dir():
            raise DataError(f"--data {path} is not a folder; give folders of noisy images")
    if len(paths) == 1:
        return str(paths[0]), list(include) if include else None
    root = Path(os.path.commonpath([str(p.resolve()) for p in paths]))
    patterns = []
    for path in paths:
        relative = path.resolve().relative_to(root).as_posix()
        for pattern in include or ["*"]:
            patterns.append(f"{relative}/{pattern}" if relative != "." else pattern)
    return _shortest(root), patterns


def _shortest(path: Path) -> str:
    try:
        return os.path.relpath(path)
    except ValueError:  # another drive on Windows
        return str(path)


def distillation_experiment(
    teacher: str | os.PathLike[str],
    data: list[str | os.PathLike[str]],
    *,
    include: list[str] | None = None,
    net: str = "nafnet",
    preset: str | None = "small",
    steps: int = 4000,
    regions: int = 1024,
    region_size: int = 192,
    crop_size: int = 96,
    downscale_factors: Sequence[int] = (1,),
    noise_scales: Sequence[float] = (1.0,),
    batch_size: int = 8,
    lr: float = 5e-4,
    teacher_variant: str = "E",
    precision: str = "auto",
    teacher_precision: str = "fp32",
    init_from_teacher: bool | None = None,
    seed: int = 0,
    cache_dir: str | os.PathLike[str] = "runs/cache/distill",
    name: str = "distill",
    device: str = "auto",
) -> dict:
    """The experiment configuration (a dict for :func:`amsnet.config.validate`) that distils
    ``teacher`` into a one-pass ``net`` on the noisy images of ``data``.

    ``precision`` is the student's while it trains, ``teacher_precision`` the teacher's
    while it computes the targets (:mod:`amsnet.precision`; float32 by default, see
    ``data.train.teacher_precision``).

    ``downscale_factors`` is the training crops' scale augmentation
    (:class:`amsnet.data.training_crops.TrainingCrops`): a region and its teacher output
    averaged over the same blocks stay a pair, which teaches the student resized photos;
    ``region_size`` must hold ``crop_size`` times the largest factor. ``noise_scales`` is the
    noise-strength augmentation: a crop's input becomes ``target + s (noisy - target)``,
    the teacher's residual ``s`` times weaker, which teaches the student weak noise.

    ``init_from_teacher`` starts the student from the teacher's backbone weights; ``None``
    does so when the student's network is the teacher's (then the student starts from a
    network that already denoises, and needs far fewer steps).
    """
    from amsnet.build import build_net
    from amsnet.checkpoint import read_header
    from amsnet.training.run_folder import changed_keys
    from amsnet.zoo import resolve_weights

    teacher_file = resolve_weights(teacher)
    header = read_header(teacher_file)
    teacher_net = header["config"]["net"]
    student_net = {"name": net, **({"preset": preset} if preset else {})}
    # Stored configurations hold every constructor argument: compare what both build to.
    built = dict(build_net(student_net).net_config)
    same = not changed_keys(teacher_net, built)
    if init_from_teacher is None:
        init_from_teacher = same
    elif init_from_teacher and not same:
        raise DataError(
            f"the student's network {student_net} is not the teacher's {teacher_net}, so it "
            "cannot start from the teacher's weights; drop --init-from-teacher"
        )
    root, patterns = pool_selection(data, include)
    train_data: dict = {
        "kind": "distillation",
        "root": root,
        "teacher": str(teacher),
        "teacher_variant": teacher_variant,
        "teacher_precision": teacher_precision,
        "regions": regions,
        "region_size": region_size,
        "crop_size": crop_size,
        "downscale_factors": list(downscale_factors),
        "noise_scales": [float(scale) for scale in noise_scales],
        "batch_size": batch_size,
        "workers": 0,
        "cache_dir": str(cache_dir),
        "flips": True,
        "rotate": True,
    }
    if patterns is not None:
        train_data["include"] = patterns
    teacher_name = str(teacher) if str(teacher) == Path(teacher).name else Path(teacher).name
    return {
        "experiment": {"name": name, "seed": seed, "output_dir": "runs"},
        "method": {
            "name": "distilled",
            "teacher": teacher_name,
            "teacher_variant": teacher_variant,
        },
        "net": student_net,
        "data": {"train": train_data},
        "train": {
            "stage": "B",
            "steps": steps,
            "optimizer": {"name": "adamw", "lr": lr},
            "schedule": {"name": "cosine", "warmup_steps": min(100, steps // 10)},
            "grad_clip": 1.0,
            "init": str(teacher_file) if init_from_teacher else None,
            "log_every": 100,
            "checkpoint_every": 250,
            "device": device,
            "precision": precision,
        },
    }
