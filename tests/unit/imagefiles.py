"""Small image files for the folder tests, written with Pillow."""

from __future__ import annotations

import numpy as np
from PIL import Image as PILImage

RNG = np.random.default_rng(7)


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(array).save(path)
    return path


def noise(height, width, channels=3):
    shape = (height, width) if channels == 1 else (height, width, channels)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def coordinates_image(height, width):
    """RGB image whose pixel (y, x) is (y, x, 0): a crop tells where it came from."""
    y, x = np.mgrid[:height, :width]
    return np.stack([y, x, np.zeros_like(y)], axis=-1).astype(np.uint8)
