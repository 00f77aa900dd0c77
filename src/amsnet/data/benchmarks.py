"""The benchmarks amsnet scores on: their records and how each is opened.

* :class:`EvalPair`: a noisy image, its reference, a name.
* :func:`load_pairs`: a benchmark by name (:data:`DATASETS`), lazily, pair by pair: PolyU and
  CC (Nam et al.) by their file-name rules, paired folders, the SIDD validation blocks, and
  clean images with synthetic noise (Gaussian, or camera noise).
* :func:`load_benchmark`: the same from a ``data.val`` section, ``limit`` pairs spread over the
  whole set, in memory (what training validates on).

Evaluation (:mod:`amsnet.evaluate`) only scores what these give; which protocol a number
belongs to is :mod:`amsnet.data.protocols`.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NamedTuple

import torch

from amsnet.config import SKIMAGE_SOURCE, ValDataConfig
from amsnet.errors import ConfigError

DATASETS = ("polyu", "cc", "folders", "sidd-val", "awgn", "camera")


class EvalPair(NamedTuple):
    """A noisy image and its reference: ``(3, H, W)`` float32 tensors in ``[0, 1]``."""

    name: str
    noisy: torch.Tensor
    clean: torch.Tensor


def load_pairs(
    dataset: str,
    root: str | os.PathLike[str],
    *,
    clean_root: str | os.PathLike[str] | None = None,
    sigma: float | None = None,
    level: str | None = None,
    seed: int = 0,
    limit: int | None = None,
    strict: bool = True,
) -> Iterator[EvalPair]:
    """The pairs of a benchmark, lazily, as ``(3, H, W)`` float32 tensors.

    Args:
        dataset: one of :data:`DATASETS`: ``polyu`` (``*_real.JPG`` / ``*_mean.JPG``), ``cc``
            (Nam et al.: ``*_real.png`` / ``*_mean.png``), ``folders`` (noisy images in
            ``root``, clean ones with the same relative names in ``clean_root``),
            ``sidd-val`` (the 1280 validation blocks), ``awgn`` (clean images in ``root`` plus
            Gaussian noise of ``sigma`` on the 0-255 scale, drawn once per image from
            ``seed``), ``camera`` (clean images plus synthetic camera noise at ``level``).
        root: the dataset folder.
        clean_root: for ``folders``.
        sigma: for ``awgn``.
        level: for ``camera`` (``low``, ``medium``, ``high``).
        seed: noise seed for ``awgn`` and ``camera``.
        limit: at most this many pairs, spread over the whole set for ``sidd-val`` and taken
            in name order otherwise.
        strict: ``sidd-val`` only: require the published 40 x 32 blocks of 256 x 256.
    """
    if dataset not in DATASETS:
        raise ConfigError(f"unknown dataset {dataset!r}; choose one of {DATASETS}")
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit must be a positive number of images (--limit), got {limit!r}")
    if dataset in ("polyu", "cc", "folders"):
        from amsnet.data.pairs import PairedFolder

        pairs = PairedFolder(root, rule=dataset, clean_root=clean_root)
        count = len(pairs) if limit is None else min(limit, len(pairs))
        for index in range(count):
            item = pairs[index]
            yield EvalPair(item["name"], item["noisy"], item["clean"])
    elif dataset == "sidd-val":
        from amsnet.data.sidd import read_sidd_validation

        blocks = read_sidd_validation(root, subset=limit, strict=strict)
        for index, noisy, clean in blocks.tensors():
            image, block = blocks.position(index)
            yield EvalPair(f"{image:02d}_{block:02d}", noisy, clean)
    else:
        from amsnet.data.folders import list_images
        from amsnet.data.io import read_image

        paths = list_images(root)
        base = Path(root)
        for path in paths[:limit]:
            name = path.relative_to(base).with_suffix("").as_posix()
            clean = read_image(path).rgb
            yield EvalPair(name, *_synthetic_noise(dataset, clean, name, sigma, level, seed))


def _synthetic_noise(
    dataset: str, clean: torch.Tensor, name: str, sigma: float | None, level: str | None, seed: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``(noisy, reference)``. For camera noise the reference is the clean image processed
    through the same mosaic and demosaicking as the noisy one (``camera_noise``'s target), so
    that demosaicking differences do not count as noise."""
    from amsnet.data.noise import add_gaussian_noise, image_seed

    if dataset == "awgn":
        if sigma is None:
            raise ConfigError("dataset 'awgn' needs sigma (on the 0-255 scale), e.g. 25")
        return add_gaussian_noise(clean[None], sigma, seed=seed, names=[name])[0], clean
    from amsnet.data.camera_noise import camera_noise

    noisy, reference, _ = camera_noise(
        clean[None], seed=image_seed(seed, name), iso_like_level=level or "medium"
    )
    return noisy[0], reference[0]


def load_benchmark(config: ValDataConfig) -> list[EvalPair]:
    """The pairs of a benchmark section (``data.val``), ``limit`` of them spread evenly over
    the whole set (:func:`amsnet.data.sidd_blocks.spread_indices`; the SIDD reader spreads
    its blocks itself), in memory.

    Raises:
        DataError: a missing or malformed dataset.
        ConfigError: scikit-image is missing for ``root: skimage``.
    """
    if config.dataset == "camera" and config.root == SKIMAGE_SOURCE:
        from amsnet.data.photos import skimage_photos, SKIMAGE_VAL_PHOTOS, with_camera_noise

        triples = with_camera_noise(
            skimage_photos(SKIMAGE_VAL_PHOTOS), config.level, config.noise_seed
        )
        pairs = [EvalPair(name, noisy, clean) for name, noisy, clean in triples]
        return _spread(pairs, config.limit)
    options: dict[str, Any] = {
        "clean_root": config.clean_root,
        "sigma": config.sigma,
        "level": config.level,
        "seed": config.noise_seed,
        "strict": config.strict,
    }
    if config.dataset == "sidd-val":
        # The SIDD reader spreads the subset over all 40 images itself.
        return list(load_pairs(config.dataset, config.root, limit=config.limit, **options))
    chosen = None
    if config.limit is not None:
        total = count_pairs(config)
        if config.limit < total:
            from amsnet.data.sidd_blocks import spread_indices

            chosen = set(spread_indices(total, config.limit).tolist())
    return [
        pair
        for index, pair in enumerate(load_pairs(config.dataset, config.root, **options))
        if chosen is None or index in chosen
    ]


def count_pairs(config: ValDataConfig) -> int:
    """Number of pairs ``load_pairs`` yields for the dataset (without reading the images)."""
    if config.dataset in ("polyu", "cc", "folders"):
        from amsnet.data.pairs import PairedFolder

        return len(PairedFolder(config.root, rule=config.dataset, clean_root=config.clean_root))
    from amsnet.data.folders import list_images

    return len(list_images(config.root))


def _spread(pairs: list[EvalPair], limit: int | None) -> list[EvalPair]:
    if limit is None or limit >= len(pairs):
        return pairs
    from amsnet.data.sidd_blocks import spread_indices

    return [pairs[index] for index in spread_indices(len(pairs), limit).tolist()]
