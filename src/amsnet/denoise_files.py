"""Denoising image files to image files: the workflow ``amsnet denoise`` and ``amsnet serve`` share.

One :class:`FileDenoiser` holds the settings of a batch (model, variant, seed, tiling, output
depth and quality) and the memory-per-pixel measurement of its first file, so that the
measurement is taken once per batch. :meth:`FileDenoiser.denoise_file` reads one file as
integers (a huge photo never exists as a float copy), denoises it in tiles
(:func:`amsnet.inference.denoise_image`), and writes the result atomically in the output's
format with the input's alpha (carried, not denoised), ICC profile and EXIF.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from amsnet.build import Method
from amsnet.data.images import alpha_at_depth, rgb_to_integer
from amsnet.data.io import read_integer_image, write_image
from amsnet.inference import denoise_image, plan_tiles, Progress

PathLike = str | os.PathLike[str]


@dataclass
class FileResult:
    """What one file became. ``noisy`` and ``denoised`` (integer ``(H, W, C)`` arrays at the
    input's and the output's bit depth) are kept only when asked for (``keep_pixels``)."""

    source: Path
    target: Path
    width: int
    height: int
    tile: int | None
    bit_depth: int
    noisy: np.ndarray | None = None
    denoised: np.ndarray | None = None


@dataclass
class FileDenoiser:
    """Settings shared by the files of one batch.

    Args:
        method: the model, in eval mode on its device (:func:`amsnet.inference.load_for_inference`).
        refine: apply R3 (the ``-E`` variants); the caller checks the model can.
        seed: keys the masks (with the pixel positions: tiling does not change them).
        tile: ``"auto"`` (from the memory budget), a size in pixels, or ``None`` (whole image).
        overlap: pixels shared by neighbouring tiles.
        memory_budget: bytes of working memory per tile (``None``: the device's default).
        bit_depth: of the outputs, 8 or 16 (``None``: the input's).
        quality: JPEG / WebP quality, 1-100.
        overwrite: replace an existing output (otherwise writing it is a ``DataError``).
        ensemble: average over this many flips and rotations (1-8, :mod:`amsnet.ops.dihedral`).
        strength: how much of the removed noise stays removed (0-1, :mod:`amsnet.ops.strength`).
    """

    method: Method
    refine: bool = False
    seed: int = 0
    tile: int | str | None = "auto"
    overlap: int = 64
    memory_budget: int | None = None
    bit_depth: int | None = None
    quality: int = 95
    overwrite: bool = False
    ensemble: int = 1
    strength: float = 1.0
    _bytes_per_pixel: float | None = field(default=None, init=False, repr=False)

    def denoise_file(
        self,
        source: PathLike,
        target: PathLike,
        *,
        progress: Progress | None = None,
        keep_pixels: bool = False,
    ) -> FileResult:
        """Denoise ``source`` into ``target`` (its suffix chooses the format).

        Raises:
            DataError: the input cannot be read as an image, or ``target`` exists and
                ``overwrite`` is off.
            OSError: the output cannot be written.
        """
        source, target = Path(source), Path(target)
        image = read_integer_image(source)
        height, width = image.array.shape[:2]
        plan = self._plan(height, width)
        rgb = denoise_image(
            self.method,
            image.array,
            refine=self.refine,
            seed=self.seed,
            plan=plan,
            progress=progress,
            ensemble=self.ensemble,
            strength=self.strength,
        )
        depth = self.bit_depth or image.bit_depth
        values = rgb_to_integer(rgb, image.array.shape[2], depth)
        del rgb
        write_image(
            target,
            values,
            alpha=alpha_at_depth(image.alpha_array, depth),
            icc_profile=image.icc_profile,
            exif=image.exif,
            quality=self.quality,
            overwrite=self.overwrite,
        )
        return FileResult(
            source,
            target,
            width,
            height,
            plan.tile,
            depth,
            noisy=image.array if keep_pixels else None,
            denoised=values if keep_pixels else None,
        )

    def _plan(self, height: int, width: int):
        if self.tile == "auto" and self._bytes_per_pixel is None:
            # The first file measures the model's memory per pixel; the others reuse it.
            plan = plan_tiles(
                self.method,
                height,
                width,
                refine=self.refine,
                overlap=self.overlap,
                memory_budget=self.memory_budget,
            )
            self._bytes_per_pixel = plan.bytes_per_pixel
            return plan
        return plan_tiles(
            self.method,
            height,
            width,
            refine=self.refine,
            tile=self.tile,
            overlap=self.overlap,
            memory_budget=self.memory_budget,
            bytes_per_pixel=self._bytes_per_pixel,
        )
