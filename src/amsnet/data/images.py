"""Images in memory: the decoded-image record and every conversion between pixel kinds.

The kinds an image takes in the package:

* **integer pixels**: numpy ``(H, W, C)`` uint8 or uint16, what a file decodes to
  (:attr:`Image.array`); a huge photo stays in this form, 4x smaller than float32;
* **float pixels**: a float32 tensor ``(C, H, W)`` in ``[0, 1]``, what the networks compute
  on; ``k`` becomes ``k / 255`` or ``k / 65535`` (:func:`from_integer`), and back by clamping,
  scaling in float32 and rounding half to even (:func:`to_integer`, the quantisation of the
  official AMSNet evaluation);
* **what a user hands to** :func:`amsnet.denoise`: a numpy array (integer or float, with or
  without alpha), a torch tensor or a PIL image (:func:`as_float_rgb`, :func:`numpy_source`,
  :func:`numpy_result`, :func:`tensor_sources`, :func:`tensor_result`).

Channels: ``C = 1`` (gray) or ``3`` (RGB); alpha is kept apart and never denoised. A gray
image enters the RGB networks as three equal channels (:func:`as_rgb`) and goes back to one
channel as the mean of the three (:func:`restore_channels`).
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amsnet.errors import ConfigError, ShapeError
from amsnet.ops.checks import check_image_tensor

log = logging.getLogger(__name__)

__all__ = [
    "FLOAT_TOLERANCE",
    "Image",
    "Source",
    "alpha_at_depth",
    "as_float_rgb",
    "as_rgb",
    "check_float_values",
    "float_chw",
    "from_integer",
    "from_uint8",
    "from_uint16",
    "hwc_to_rgb",
    "is_pil",
    "numpy_result",
    "numpy_source",
    "pil_to_array",
    "restore_channels",
    "rgb_region",
    "rgb_to_integer",
    "sixteen_to_eight_bits",
    "source_size",
    "split_channels",
    "tensor_result",
    "tensor_sources",
    "to_integer",
    "to_uint8",
    "to_uint16",
]

_MAXIMUM = {8: 255, 16: 65535}

Source = torch.Tensor | np.ndarray
"""An image as :func:`amsnet.inference.denoise_image` takes it: float ``(C, H, W)`` tensor in
``[0, 1]``, or integer ``(H, W, C)`` array (uint8 / uint16)."""


@dataclass(frozen=True, eq=False)
class Image:
    """A decoded image file: its integer pixels, their float views and the file's metadata.

    Attributes:
        array: numpy ``(H, W, C)``, uint8 for 8-bit files and uint16 for 16-bit ones,
            ``C = 3`` (RGB) or ``1`` (gray), upright (EXIF orientation applied).
        alpha_array: numpy ``(H, W)`` of ``array``'s dtype, or ``None``; carried, never
            denoised.
        bit_depth: 8 or 16, the bits per sample of the file.
        format: ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"BMP"`` or ``"WEBP"``.
        icc_profile: the embedded ICC profile, or ``None``.
        exif: the EXIF block (``b"Exif\\0\\0"`` + TIFF structure) with orientation reset to 1,
            or ``None``.
        orientation: the EXIF orientation (1..8) that was applied; 1 means none.
        path: the file it was read from.
    """

    array: np.ndarray
    alpha_array: np.ndarray | None
    bit_depth: int
    format: str
    icc_profile: bytes | None
    exif: bytes | None
    orientation: int
    path: Path

    # Cached: one float copy per record, made only when asked for (a huge photo read for
    # tiled denoising never has one).
    @cached_property
    def pixels(self) -> torch.Tensor:
        """Float32 ``(C, H, W)`` in ``[0, 1]`` (``k / 255`` or ``k / 65535``)."""
        return from_integer(self.array)

    @cached_property
    def alpha(self) -> torch.Tensor | None:
        """Float32 ``(1, H, W)`` in ``[0, 1]``, or ``None``."""
        return None if self.alpha_array is None else from_integer(self.alpha_array)

    @property
    def rgb(self) -> torch.Tensor:
        """Float32 ``(3, H, W)``: :attr:`pixels`, a gray channel repeated three times."""
        return as_rgb(self.pixels)

    @property
    def channels(self) -> int:
        """1 for grayscale, 3 for RGB."""
        return int(self.array.shape[2])

    @property
    def height(self) -> int:
        return int(self.array.shape[0])

    @property
    def width(self) -> int:
        return int(self.array.shape[1])


# ----- integer <-> float


def to_integer(pixels: torch.Tensor, bit_depth: int) -> np.ndarray:
    """Quantise ``pixels`` to an integer array the way AMSNet's evaluation does.

    Values are clamped to ``[0, 1]``, multiplied by ``2**bit_depth - 1`` in float32 and rounded
    half to even.

    Args:
        pixels: float tensor ``(C, H, W)``, any device.
        bit_depth: 8 or 16.

    Returns:
        numpy array ``(H, W, C)``, dtype uint8 or uint16.

    Raises:
        ShapeError: wrong rank or dtype, or NaN values (they have no integer value).
    """
    check_image_tensor(pixels, "pixels", ndim=3)
    if bit_depth not in _MAXIMUM:
        raise ConfigError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    values = pixels.detach().to("cpu", torch.float32)
    scaled = values.clamp(0.0, 1.0).mul_(_MAXIMUM[bit_depth]).round_()
    if not torch.isfinite(scaled.sum()):  # NaN survives clamp and round; one pass finds it
        raise ShapeError("pixels contain NaN values; they cannot be written as an image")
    # torch.uint16 is recent and partial, so 16-bit values go through int32.
    integer = torch.uint8 if bit_depth == 8 else torch.int32
    hwc = scaled.permute(1, 2, 0).to(integer, memory_format=torch.contiguous_format).numpy()
    return hwc if bit_depth == 8 else hwc.astype(np.uint16)


def from_integer(array: np.ndarray) -> torch.Tensor:
    """Convert an integer image array to a float tensor in ``[0, 1]``.

    Args:
        array: numpy ``(H, W)`` or ``(H, W, C)``, dtype uint8 (divided by 255) or uint16
            (divided by 65535).

    Returns:
        float32 tensor ``(C, H, W)``; ``k / 255`` and ``k / 65535`` are correctly rounded, so
        :func:`to_integer` gives back exactly ``array``.
    """
    if not isinstance(array, np.ndarray):
        raise ShapeError(f"expected a numpy array, got {type(array).__name__}")
    if array.dtype == np.uint8:
        maximum = 255.0
    elif array.dtype == np.uint16:
        maximum = 65535.0
    else:
        raise ShapeError(f"expected a uint8 or uint16 array, got dtype {array.dtype}")
    if array.ndim == 2:
        array = array[:, :, None]
    if array.ndim != 3:
        raise ShapeError(f"expected an (H, W) or (H, W, C) array, got shape {array.shape}")
    chw = np.ascontiguousarray(array.transpose(2, 0, 1))
    if not chw.flags.writeable:  # torch warns on read-only memory (Pillow's buffers)
        chw = chw.copy()
    # float32 division is correctly rounded; multiplying by 1/255 would not always be.
    return torch.from_numpy(chw).to(torch.float32) / maximum


def _from_dtype(array: np.ndarray, dtype: type, name: str) -> torch.Tensor:
    """:func:`from_integer` of an array that must have ``dtype`` (``name`` is the caller)."""
    if not isinstance(array, np.ndarray) or array.dtype != dtype:
        found = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise ShapeError(f"{name} expects a {np.dtype(dtype).name} numpy array, got {found}")
    return from_integer(array)


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` float in ``[0, 1]`` -> ``(H, W, C)`` uint8 (clamp, x 255, round half to even).

    Example:
        >>> to_uint8(torch.tensor([[[0.0, 0.5, 1.2]]])).ravel().tolist()
        [0, 128, 255]
    """
    return to_integer(pixels, 8)


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` uint8 -> float32 ``(C, H, W)`` in ``[0, 1]`` (``k / 255``)."""
    return _from_dtype(array, np.uint8, "from_uint8")


def to_uint16(pixels: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` float in ``[0, 1]`` -> ``(H, W, C)`` uint16 (clamp, x 65535, round)."""
    return to_integer(pixels, 16)


def from_uint16(array: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` uint16 -> float32 ``(C, H, W)`` in ``[0, 1]`` (``k / 65535``)."""
    return _from_dtype(array, np.uint16, "from_uint16")


def rgb_to_integer(rgb: torch.Tensor, channels: int, bit_depth: int) -> np.ndarray:
    """A float RGB result ``(3, H, W)`` -> integer ``(H, W, channels)``, a band at a time.

    ``channels = 1`` takes the mean of the three channels (see :func:`restore_channels`).
    Converting bands of rows keeps the float temporaries small (a 6000x4000 photo is never
    copied whole as float again).
    """
    height, width = rgb.shape[1:]
    out = np.empty((height, width, channels), dtype=np.uint8 if bit_depth == 8 else np.uint16)
    for top in range(0, height, 256):
        band = restore_channels(rgb[:, top : top + 256], channels)
        out[top : top + 256] = to_integer(band, bit_depth)
    return out


def sixteen_to_eight_bits(values: np.ndarray) -> np.ndarray:
    """uint16 values (any shape) as uint8, rounded to the nearest level."""
    return ((values.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def alpha_at_depth(alpha: np.ndarray | None, bit_depth: int) -> np.ndarray | None:
    """The alpha plane ``(H, W)`` converted to the output's bit depth (8 or 16), rounded."""
    if alpha is None:
        return None
    if bit_depth == 8 and alpha.dtype == np.uint16:
        return sixteen_to_eight_bits(alpha)
    if bit_depth == 16 and alpha.dtype == np.uint8:
        return alpha.astype(np.uint16) * 257
    return alpha


# ----- channels


def as_rgb(pixels: torch.Tensor) -> torch.Tensor:
    """Give a grayscale image three identical channels for the RGB networks.

    Args:
        pixels: ``(..., C, H, W)`` with ``C = 1`` or ``3``.

    Returns:
        ``(..., 3, H, W)``: ``pixels`` itself when ``C = 3``, else a new tensor with the gray
        channel repeated.

    Example:
        >>> as_rgb(torch.zeros(1, 4, 5)).shape
        torch.Size([3, 4, 5])
    """
    if pixels.ndim < 3 or pixels.shape[-3] not in (1, 3):
        raise ShapeError(
            f"expected (..., C, H, W) with C = 1 or 3 channels, got {tuple(pixels.shape)}"
        )
    if pixels.shape[-3] == 3:
        return pixels
    repeats = [1] * pixels.ndim
    repeats[-3] = 3
    return pixels.repeat(*repeats)


def restore_channels(rgb: torch.Tensor, like: Image | int) -> torch.Tensor:
    """Give a network's RGB output the channel count of the image it came from.

    A grayscale source gets the mean of the three output channels (they are near-identical,
    because the input channels were identical; the mean also averages out what differs).

    Args:
        rgb: ``(..., 3, H, W)``.
        like: the image that was read, or its channel count (1 or 3).

    Returns:
        ``(..., 1, H, W)`` for a grayscale ``like``, else ``rgb`` itself.
    """
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ShapeError(f"expected (..., 3, H, W), got {tuple(rgb.shape)}")
    channels = like if isinstance(like, int) else like.channels
    if channels == 1:
        # float64 makes the mean of three equal float32 values exactly that value.
        return rgb.double().mean(dim=-3, keepdim=True).to(rgb.dtype)
    return rgb


def hwc_to_rgb(array: np.ndarray) -> torch.Tensor:
    """An ``(H, W, C)`` array (uint8, uint16, or float32 already in ``[0, 1]``) as a float32
    RGB ``(3, H, W)`` tensor in ``[0, 1]``."""
    if array.dtype == np.float32:
        return as_rgb(torch.from_numpy(np.ascontiguousarray(array.transpose(2, 0, 1))))
    return as_rgb(from_integer(array))


def source_size(image: Source) -> tuple[int, int]:
    """``(H, W)`` of a :data:`Source`."""
    if isinstance(image, np.ndarray):
        return int(image.shape[0]), int(image.shape[1])
    return int(image.shape[-2]), int(image.shape[-1])


def rgb_region(image: Source, rows: slice, columns: slice) -> torch.Tensor:
    """A region of a :data:`Source` as a float32 RGB ``(3, h, w)`` tensor in ``[0, 1]``."""
    if isinstance(image, np.ndarray):
        return as_rgb(from_integer(image[rows, columns]))
    return as_rgb(image[:, rows, columns].float())


# ----- what users pass in: numpy arrays, tensors, PIL images

FLOAT_TOLERANCE = 1.0
"""How far float pixel values may lie outside ``[0, 1]``: noise pushes values past 0 and 1
(an unclipped synthetic noisy image), but a value beyond ``[-1, 2]`` means another scale
(0-255 floats) and would be denoised as nonsense."""


def check_float_values(pixels: torch.Tensor, what: str) -> torch.Tensor:
    """Refuse float pixels that are not finite or not on the ``[0, 1]`` scale.

    Args:
        pixels: float tensor of any shape.
        what: the input's description, for the message.

    Returns:
        ``pixels``.

    Raises:
        ShapeError: NaN or infinite values, or values beyond ``[-FLOAT_TOLERANCE,
            1 + FLOAT_TOLERANCE]``.
    """
    if pixels.numel() == 0:
        raise ShapeError(f"{what} is empty (shape {tuple(pixels.shape)})")
    low, high = torch.aminmax(pixels.detach())
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ShapeError(f"{what} holds NaN or infinite values; replace them before denoising")
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        hint = " (it looks like 0-255: divide by 255)" if high <= 255 + FLOAT_TOLERANCE else ""
        raise ShapeError(
            f"{what} has values in [{low:g}, {high:g}]; float images must lie in [0, 1]{hint}"
        )
    return pixels


def split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(H, W[, C])`` -> ``(hwc, colour, alpha)``: colour is the first 3 channels (1 for
    gray), alpha the rest (``(H, W, 0)`` when there is none).

    Raises:
        ShapeError: another rank, channel count, or an empty image.
    """
    hwc = array[..., None] if array.ndim == 2 else array
    if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4) or min(hwc.shape[:2]) < 1:
        raise ShapeError(f"a numpy image must be (H, W) or (H, W, C), got {array.shape}")
    colour = hwc[..., :3] if hwc.shape[2] >= 3 else hwc[..., :1]
    return hwc, colour, hwc[..., colour.shape[2] :]


def float_chw(colour: np.ndarray) -> torch.Tensor:
    """A float ``(H, W, C)`` array as a checked float32 ``(C, H, W)`` tensor."""
    chw = torch.from_numpy(np.ascontiguousarray(colour, np.float32)).permute(2, 0, 1)
    return check_float_values(chw, "the float array")


def numpy_source(array: np.ndarray) -> Source:
    """The colour channels of a numpy image ``(H, W[, C])`` as a :data:`Source`: float arrays
    as a checked float32 ``(C, H, W)`` tensor, uint8 / uint16 ones as the integer ``(H, W, C)``
    array itself (no float copy).

    Raises:
        ShapeError: another shape or dtype, or float values off the ``[0, 1]`` scale.
    """
    _, colour, _ = split_channels(array)
    if np.issubdtype(colour.dtype, np.floating):
        return float_chw(colour)
    if colour.dtype in (np.uint8, np.uint16):
        return np.ascontiguousarray(colour)
    raise ShapeError(f"numpy images must be uint8, uint16 or float, got {colour.dtype}")


def numpy_result(rgb: torch.Tensor, like: np.ndarray) -> np.ndarray:
    """A float RGB result ``(3, H, W)`` in the form of the numpy image it was made from.

    Args:
        rgb: the denoised colour, float32 ``(3, H, W)``.
        like: the input, as given to :func:`numpy_source`.

    Returns:
        ``like``'s shape and dtype: float results clamped to ``[0, 1]``, integer ones quantised
        (:func:`rgb_to_integer`); gray gets the mean of the three channels, and ``like``'s
        alpha is copied back unchanged.
    """
    hwc, colour, alpha = split_channels(like)
    channels = colour.shape[2]
    if np.issubdtype(hwc.dtype, np.floating):
        restored = restore_channels(rgb, channels).clamp_(0, 1)
        values = restored.permute(1, 2, 0).numpy().astype(hwc.dtype)
    else:
        values = rgb_to_integer(rgb, channels, 8 if hwc.dtype == np.uint8 else 16)
    result = np.concatenate([values, alpha], axis=2) if alpha.shape[2] else values
    return result[..., 0] if like.ndim == 2 else result


def tensor_sources(image: torch.Tensor) -> list[torch.Tensor]:
    """The images of a float tensor ``(B, C, H, W)`` or ``(C, H, W)`` in ``[0, 1]``, each a
    ``(C, H, W)`` CPU tensor.

    Raises:
        ShapeError: another rank, an integer dtype, or values off the ``[0, 1]`` scale.
    """
    if image.ndim not in (3, 4) or not image.is_floating_point():
        raise ShapeError(
            f"a tensor image must be float (B, C, H, W) or (C, H, W) in [0, 1], got "
            f"{tuple(image.shape)} {image.dtype}"
        )
    check_float_values(image, "the tensor image")
    batch = image if image.ndim == 4 else image[None]
    return [single.detach().cpu() for single in batch]


def tensor_result(outputs: list[torch.Tensor], like: torch.Tensor) -> torch.Tensor:
    """Float RGB results ``(3, H, W)``, one per image of ``like``, in ``like``'s form: its
    rank, channel count, dtype and device, clamped to ``[0, 1]``."""
    channels = int(like.shape[-3])
    restored = [restore_channels(rgb, channels) for rgb in outputs]
    result = torch.stack(restored).clamp_(0, 1).to(like.device, like.dtype)
    return result if like.ndim == 4 else result[0]


def is_pil(image: Any) -> bool:
    """Whether ``image`` is a PIL image (checked without importing PIL)."""
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode")


# PIL modes and what they are converted to on the way in (the result comes back in it).
_PIL_CONVERSIONS = {
    "1": "L",
    "P": "RGB",
    "PA": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "HSV": "RGB",
    "LAB": "RGB",
    "RGBX": "RGB",
    "RGBa": "RGBA",
    "La": "LA",
}
_PIL_KEPT = ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L")


def pil_to_array(image: Any) -> np.ndarray:
    """A PIL image's pixels as a uint8/uint16 array; other modes are converted (logged).

    Palette images become RGB (RGBA with transparency), CMYK, YCbCr, HSV and LAB become RGB:
    denoising palette indices or the K channel would return nonsense.

    Raises:
        ShapeError: 32-bit integer or float modes (``I``, ``F``), whose scale is unknown.
    """
    mode = image.mode
    if mode not in _PIL_KEPT:
        target = _PIL_CONVERSIONS.get(mode)
        if mode == "P" and "transparency" in image.info:
            target = "RGBA"
        if target is None:
            raise ShapeError(
                f"PIL images in mode {mode!r} are not accepted (their value range is unknown); "
                "convert to 'RGB', 'L' or 'I;16', or pass a float array in [0, 1]"
            )
        log.info("a PIL image in mode %s is denoised and returned as %s", mode, target)
        image = image.convert(target)
    array = np.asarray(image)
    return array.astype(np.uint16) if array.dtype.kind in "iu" and array.itemsize > 1 else array


def as_float_rgb(image: Any) -> torch.Tensor:
    """A numpy array, tensor or PIL image (the kinds :func:`amsnet.denoise` takes) as float32
    RGB ``(3, H, W)`` in ``[0, 1]``; a batch gives its first image, alpha is dropped.

    Raises:
        ShapeError: an unaccepted kind, shape, dtype, mode or value range.
    """
    if isinstance(image, torch.Tensor):
        chw = image[0] if image.ndim == 4 else image
        if chw.ndim != 3 or not chw.is_floating_point() or chw.shape[0] not in (1, 3, 4):
            raise ShapeError(
                f"a tensor image must be float (B, C, H, W) or (C, H, W), got "
                f"{tuple(image.shape)} {image.dtype}"
            )
        return check_float_values(as_rgb(chw.detach().float().cpu()[:3]), "the tensor image")
    array = pil_to_array(image) if is_pil(image) else np.asarray(image)
    _, colour, _ = split_channels(array)
    if np.issubdtype(colour.dtype, np.floating):
        return as_rgb(float_chw(colour))
    return as_rgb(from_integer(np.ascontiguousarray(colour)))
