"""The one dataset of random training crops, over any :class:`~amsnet.data.sources.ImageSource`.

Every item is one random crop of one random image (or of one aligned noisy/clean pair: same
position, same flips and turns in both):

* The image is drawn with probability proportional to its area (``sampling="area"``, the
  default), so every pixel of the collection is about equally likely to be trained on whatever
  the image sizes; this is also what the official AMSNet pipeline amounts to, since it cuts
  every image into equal 512x512 tiles first. ``sampling="uniform"`` draws every image equally
  often instead.
* Item ``i`` of epoch ``e`` draws from a fresh generator seeded with ``(seed, e, i)``
  (:func:`amsnet.data.crops.item_generator`), so a crop does not depend on the number of
  DataLoader workers or on which worker makes it, and resuming at step ``N`` gives the same
  crops as the uninterrupted run. Call :meth:`TrainingCrops.set_epoch` before iterating over
  each epoch; indices past ``len(dataset)`` continue into the following epochs, so a sampler of
  global step indices works as well. (Workers kept with ``persistent_workers=True`` do not see
  ``set_epoch``: use global indices there.)
* An image smaller than the crop is reflect-padded at the bottom and right (the same side as
  :func:`amsnet.ops.pad_to_multiple`), the crop then starts at 0 along that side.
* Augmentation: horizontal and vertical flips (on by default, as in the official AMSNet
  configs) and quarter turns (off by default: the official configs do not rotate, and real
  noise is slightly more correlated along rows than along columns). Each is switchable, and
  every item draws all of them, used or not.
* Scale (``downscale_factors``, off by default): each item draws a factor ``f`` from the
  list, cuts a crop ``f`` times larger and averages each ``f x f`` block of it, noisy and
  clean alike; integer noisy pixels are rounded back to their bit depth, as a resized photo
  would be. Box averaging is linear, so a clean crop averaged this way is the ground truth
  of the averaged noisy one: the pair stays exact while the content gets sharper per pixel
  and the noise weaker and less correlated, as in a photo shrunk for the web. A network that
  only saw full-resolution camera crops takes such detail for noise (see ``docs/models.md``,
  "Resized photos").
* Noise strength (``noise_scales``, off by default; pairs only): each item draws a factor
  ``s`` from the list and its noisy crop becomes ``clean + s (noisy - clean)``, rounded back
  to its bit depth: the same noise, ``s`` times weaker, over the same target. With a
  teacher's outputs as targets (distillation) ``noisy - clean`` is the teacher's residual, so
  this needs no clean image either. A network that only saw the pool's noise strength takes
  weak noise for strong and removes detail with it (``docs/models.md``, "Weak noise").
* Grayscale images are repeated to three channels; alpha is ignored.

:class:`amsnet.data.folders.NoisyFolder` is this dataset over the images of a folder.
"""

from __future__ import annotations

import numpy as np
import torch
from torch.utils.data import Dataset

from amsnet.config import check_downscale_factors, check_noise_scales
from amsnet.data.crops import (
    check_epoch,
    check_positive,
    check_seed,
    crop_array,
    item_generator,
    random_crop_origin,
)
from amsnet.data.images import hwc_to_rgb
from amsnet.data.sources import ImageSource
from amsnet.errors import ConfigError, DataError
from amsnet.ops.downscale import box_downscale

SAMPLING_MODES: tuple[str, ...] = ("area", "uniform")


def check_crop_settings(
    crop_size: int, pd_factor: int, crops_per_epoch: int, seed: int, sampling: str
) -> None:
    """Raise a :class:`~amsnet.errors.ConfigError` naming the first bad setting."""
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


def _integer_levels(dtype: np.dtype) -> int | None:
    """255 for uint8 pixels, 65535 for uint16; ``None`` for float ones."""
    return int(np.iinfo(dtype).max) if np.issubdtype(dtype, np.integer) else None


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
        downscale_factors: the box-downscaling factors an item draws from, uniformly (repeat a
            factor to weight it); ``(1,)``, the default, leaves crops at full resolution and
            draws nothing, so crops are those of a dataset without the setting.
        noise_scales: the noise-strength factors an item draws from, uniformly (repeat one to
            weight it), each in ``[0, 1]``; needs ``clean``. ``(1.0,)``, the default, draws
            nothing and leaves the noisy crops as they are.

    Items: float32 ``(3, crop_size, crop_size)`` tensors in ``[0, 1]``, or with ``clean``
    ``{"noisy": ..., "clean": ...}`` of two such tensors.

    Example:
        >>> from amsnet.data.sources import ArrayImages
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
        downscale_factors: tuple[int, ...] = (1,),
        noise_scales: tuple[float, ...] = (1.0,),
    ) -> None:
        check_crop_settings(crop_size, pd_factor, crops_per_epoch, seed, sampling)
        check_downscale_factors(downscale_factors)
        check_noise_scales(noise_scales)
        if clean is None and tuple(noise_scales) != (1.0,):
            raise ConfigError(
                f"noise_scales {list(noise_scales)} needs a target for every crop (a clean "
                "image or a teacher's output); this training reads noisy images only: set "
                "noise_scales to [1] or train a method with targets"
            )
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
        self.downscale_factors = tuple(downscale_factors)
        self.noise_scales = tuple(float(scale) for scale in noise_scales)
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
        factor = 1
        if len(self.downscale_factors) > 1:
            choice = int(torch.randint(0, len(self.downscale_factors), (1,), generator=generator))
            factor = self.downscale_factors[choice]
        side = self.crop_size * factor
        top, left = random_crop_origin(height, width, side, generator)
        crops = [crop_array(source, top, left, side) for source in sources]
        # Every item draws all augmentations, used or not, so switching one off does not
        # change the others.
        flips = torch.rand(2, generator=generator) < 0.5
        turns = int(torch.randint(0, 4, (1,), generator=generator))
        if self.horizontal_flip and flips[0]:
            crops = [crop[:, ::-1] for crop in crops]
        if self.vertical_flip and flips[1]:
            crops = [crop[::-1] for crop in crops]
        if self.rotate and turns:
            crops = [np.rot90(crop, k=turns) for crop in crops]
        # Drawn last and only when there is a choice, so that crops without the setting are
        # those of earlier versions.
        scale = 1.0
        if len(self.noise_scales) > 1:
            choice = int(torch.randint(0, len(self.noise_scales), (1,), generator=generator))
            scale = self.noise_scales[choice]
        tensors = [hwc_to_rgb(crop) for crop in crops]
        if factor > 1 or scale != 1.0:
            # The noisy crop is rounded back to its file's levels once, as a resized or
            # cleaner photo saved again would be; the target stays exact.
            tensors = [box_downscale(tensor, factor) for tensor in tensors]
            if scale != 1.0:
                tensors[0] = tensors[1] + scale * (tensors[0] - tensors[1])
            levels = _integer_levels(crops[0].dtype)
            if levels is not None:
                tensors[0] = torch.round(tensors[0].clamp(0.0, 1.0) * levels) / levels
        if self.clean is None:
            return tensors[0]
        return {"noisy": tensors[0], "clean": tensors[1]}
