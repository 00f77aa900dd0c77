"""Clean photos for synthetic noise, and their noisy versions drawn once per photo.

* :func:`skimage_photos`: photographs bundled with scikit-image (training:
  :data:`SKIMAGE_TRAIN_PHOTOS`, validation: :data:`SKIMAGE_VAL_PHOTOS`, disjoint so that
  nothing is scored on what it saw).
* :func:`clean_photos`: a folder of clean images, or ``"skimage"``.
* :func:`with_camera_noise`: ``(name, noisy, clean)`` with synthetic camera noise
  (:func:`amsnet.data.camera_noise.camera_noise`) keyed to the photo's name.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch

from amsnet.config import SKIMAGE_SOURCE
from amsnet.data.images import from_integer
from amsnet.errors import ConfigError

SKIMAGE_TRAIN_PHOTOS: tuple[str, ...] = ("chelsea", "coffee", "rocket")
"""Photos bundled with scikit-image used by ``source: skimage`` for training."""
SKIMAGE_VAL_PHOTOS: tuple[str, ...] = ("astronaut",)
"""Photos bundled with scikit-image used by ``data.val`` ``dataset: camera, root: skimage``;
none of them is a training photo, so the supervised reference is not scored on what it saw."""


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
        (path.relative_to(root).with_suffix("").as_posix(), read_image(path).rgb)
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
