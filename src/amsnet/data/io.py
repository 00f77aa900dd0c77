"""Image files in and out: the only module that knows about pixel ranges, dtypes and formats.

Inside the package an image is a float32 tensor ``(C, H, W)`` in ``[0, 1]`` with ``C = 3`` (RGB)
or ``C = 1`` (grayscale). This module converts files to that form and back.

Reading (:func:`read_image`):

* Formats: PNG, JPEG (and camera MPO files, read as their first JPEG), TIFF (first page), BMP,
  WebP. The format is recognised from the file's content, not its suffix.
* Bit depths: 8 and 16 bits per sample. 1-, 2- and 4-bit images are reported as 8-bit.
  Integer values ``k`` become ``k / 255`` or ``k / 65535`` (float32, correctly rounded).
* Colour: grayscale stays one channel, everything else becomes RGB. Palette images become RGB
  (RGBA if the palette has transparency), CMYK, YCbCr and HSV images become RGB; the ICC profile
  of a CMYK image is dropped because it describes the CMYK values, not the converted RGB ones.
  32-bit integer and floating-point images are refused.
* Alpha is split off into :attr:`Image.alpha` and never touches the colour values.
* The EXIF orientation tag is applied, so ``pixels`` are upright; the tag in
  :attr:`Image.exif` is then set to 1 so that a writer does not rotate the image a second time.
  EXIF is kept for JPEG, PNG and WebP; a TIFF's tags are its own structure, so only the
  orientation is taken from them.

16-bit colour: Pillow 13 decodes 16-bit RGB and RGBA PNG and TIFF files to 8 bits (it keeps
the high byte of every sample) and cannot open 16-bit gray+alpha TIFFs. For PNG we keep
Pillow's decoder, which handles every filter and interlacing, and run it twice: once for the
high bytes (its normal output) and once with the unpacker of the opposite byte order, which
yields the low bytes; 16-bit gray+alpha PNGs are decoded once with a byte-copying unpacker.
TIFFs with more than 8 bits per sample (except plain gray, which Pillow reads exactly) are read
with ``tifffile``; where it is missing or lacks the codec (LZW and JPEG need ``imagecodecs``),
interleaved 16-bit RGB(A) TIFFs fall back to the same two-pass Pillow decoding. 16-bit TIFFs
are written with ``tifffile``.

Writing (:func:`write_image`): float values are clamped to ``[0, 1]``, multiplied by 255 (or
65535) in float32 and rounded half to even (``torch.round``), the same quantisation as the
official AMSNet evaluation (``np.round`` of ``x * 255``). 16-bit PNGs are encoded here with
numpy and zlib (per-row filter chosen by libpng's minimum-sum heuristic); everything else is
written by Pillow.

Grayscale and the RGB networks: a grayscale image enters a network as three identical channels
(:func:`as_rgb`); the result goes back to one channel as the mean of the three
(:func:`restore_channels`), so a file keeps its channel count through the package.
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from PIL import features as pil_features
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from amsnet.atomic import atomic_path
from amsnet.errors import ConfigError, DataError, ShapeError

logger = logging.getLogger(__name__)

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""Suffixes of the files the folder readers treat as images (compared case-insensitively)."""

SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "BMP", "WEBP")

_FORMAT_BY_SUFFIX = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
_EIGHT_BIT_ONLY = ("JPEG", "BMP", "WEBP")
_ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"
_MAXIMUM = {8: 255, 16: 65535}
_DTYPE = {8: np.uint8, 16: np.uint16}


@dataclass(frozen=True, eq=False)
class Image:
    """A decoded image file.

    Attributes:
        pixels: float32 tensor ``(C, H, W)`` in ``[0, 1]``, ``C = 3`` (RGB) or ``1`` (gray),
            upright (EXIF orientation applied).
        alpha: float32 tensor ``(1, H, W)`` in ``[0, 1]``, or ``None``; carried, never denoised.
        bit_depth: 8 or 16, the bits per sample of the file.
        format: ``"PNG"``, ``"JPEG"``, ``"TIFF"``, ``"BMP"`` or ``"WEBP"``.
        icc_profile: the embedded ICC profile, or ``None``.
        exif: the EXIF block (``b"Exif\\0\\0"`` + TIFF structure) with orientation reset to 1,
            or ``None``.
        path: the file it was read from.
        orientation: the EXIF orientation (1..8) that was applied; 1 means none.
    """

    pixels: torch.Tensor
    alpha: torch.Tensor | None
    bit_depth: int
    format: str
    icc_profile: bytes | None
    exif: bytes | None
    path: Path
    orientation: int = 1

    @property
    def channels(self) -> int:
        """1 for grayscale, 3 for RGB."""
        return int(self.pixels.shape[0])

    @property
    def height(self) -> int:
        return int(self.pixels.shape[1])

    @property
    def width(self) -> int:
        return int(self.pixels.shape[2])


@dataclass(frozen=True)
class _Decoded:
    """Integer pixels straight from a file: ``array`` (H, W, C) uint8/uint16, C in {1, 3}."""

    array: np.ndarray
    alpha: np.ndarray | None
    bit_depth: int
    format: str
    icc_profile: bytes | None
    exif: bytes | None
    orientation: int


def is_image_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` names an image by its suffix (:data:`IMAGE_SUFFIXES`, any case).

    Hidden files (name starting with ``.``) are not images: they are editor or OS leftovers
    such as macOS ``._photo.png`` resource forks, or the temporary files of an atomic write.

    Example:
        >>> is_image_file("a/b/X_real.JPG"), is_image_file("pairs.csv"), is_image_file("._x.png")
        (True, False, False)
    """
    name = Path(path).name
    return not name.startswith(".") and Path(name).suffix.lower() in IMAGE_SUFFIXES


# ----- integer <-> float conversions


def _check_chw(pixels: torch.Tensor, name: str) -> None:
    if not isinstance(pixels, torch.Tensor):
        raise ShapeError(f"{name} must be a torch.Tensor, got {type(pixels).__name__}")
    if pixels.ndim != 3:
        raise ShapeError(
            f"{name} must have shape (C, H, W), got {tuple(pixels.shape)}; "
            "take one image out of a batch with x[0]"
        )
    if not pixels.is_floating_point():
        raise ShapeError(
            f"{name} must be a floating-point tensor in [0, 1], got dtype {pixels.dtype}"
        )


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
    _check_chw(pixels, "pixels")
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


def to_uint8(pixels: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` float in ``[0, 1]`` -> ``(H, W, C)`` uint8 (clamp, x 255, round half to even).

    Example:
        >>> to_uint8(torch.tensor([[[0.0, 0.5, 1.2]]])).ravel().tolist()
        [0, 128, 255]
    """
    return to_integer(pixels, 8)


def from_uint8(array: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` uint8 -> float32 ``(C, H, W)`` in ``[0, 1]`` (``k / 255``)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint8:
        found = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise ShapeError(f"from_uint8 expects a uint8 numpy array, got {found}")
    return from_integer(array)


def to_uint16(pixels: torch.Tensor) -> np.ndarray:
    """``(C, H, W)`` float in ``[0, 1]`` -> ``(H, W, C)`` uint16 (clamp, x 65535, round)."""
    return to_integer(pixels, 16)


def from_uint16(array: np.ndarray) -> torch.Tensor:
    """``(H, W[, C])`` uint16 -> float32 ``(C, H, W)`` in ``[0, 1]`` (``k / 65535``)."""
    if not isinstance(array, np.ndarray) or array.dtype != np.uint16:
        found = array.dtype if isinstance(array, np.ndarray) else type(array).__name__
        raise ShapeError(f"from_uint16 expects a uint16 numpy array, got {found}")
    return from_integer(array)


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


def restore_channels(rgb: torch.Tensor, like: Image) -> torch.Tensor:
    """Give a network's RGB output the channel count of the image it came from.

    A grayscale source gets the mean of the three output channels (they are near-identical,
    because the input channels were identical; the mean also averages out what differs).

    Args:
        rgb: ``(..., 3, H, W)``.
        like: the image that was read; only its channel count is used.

    Returns:
        ``(..., 1, H, W)`` for a grayscale ``like``, else ``rgb`` itself.
    """
    if rgb.ndim < 3 or rgb.shape[-3] != 3:
        raise ShapeError(f"expected (..., 3, H, W), got {tuple(rgb.shape)}")
    if like.channels == 1:
        # float64 makes the mean of three equal float32 values exactly that value.
        return rgb.double().mean(dim=-3, keepdim=True).to(rgb.dtype)
    return rgb


# ----- reading


def _orient(array: np.ndarray, orientation: int) -> np.ndarray:
    """Apply EXIF ``orientation`` (1..8) to an ``(H, W, ...)`` array, as Pillow would."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = np.rot90(array, k=-1)
    elif orientation == 7:
        array = array.swapaxes(0, 1)[::-1, ::-1]
    elif orientation == 8:
        array = np.rot90(array, k=1)
    return np.ascontiguousarray(array)


def _orientation_and_exif(pil: PILImage.Image, fmt: str, path: Path) -> tuple[int, bytes | None]:
    """The EXIF orientation to apply and the EXIF block to keep (orientation reset to 1)."""
    try:
        tags = pil.getexif()
        orientation = int(tags.get(_ORIENTATION_TAG, 1))
    except Exception as error:  # a broken EXIF block must not make the pixels unreadable
        logger.warning("%s: unreadable EXIF data ignored (%s)", path, error)
        return 1, None
    if orientation not in range(1, 9):
        logger.warning("%s: invalid EXIF orientation %d ignored", path, orientation)
        orientation = 1
    raw = pil.info.get("exif") if fmt in ("JPEG", "PNG", "WEBP") else None
    if not raw:
        return orientation, None
    if isinstance(raw, PILImage.Exif):
        raw = raw.tobytes()
    if orientation != 1:
        exif = PILImage.Exif()
        exif.load(raw)
        exif[_ORIENTATION_TAG] = 1
        return orientation, exif.tobytes()
    return orientation, raw if raw.startswith(_EXIF_PREFIX) else _EXIF_PREFIX + raw


def _with_rawmode(tile: Any, rawmode: str) -> Any:
    """A copy of a Pillow tile descriptor that unpacks with ``rawmode``."""
    args = tile[3]
    args = (rawmode, *args[1:]) if isinstance(args, tuple) else rawmode
    if hasattr(tile, "_replace"):
        return tile._replace(args=args)
    return (tile[0], tile[1], tile[2], args)


def _tile_rawmode(pil: PILImage.Image) -> str | None:
    """The unpacker name shared by all tiles (strips) of a Pillow image, if there is one."""
    rawmodes = set()
    for tile in pil.tile:
        args = tile[3]
        rawmodes.add(args[0] if isinstance(args, tuple) else args)
    rawmode = rawmodes.pop() if len(rawmodes) == 1 else None
    return rawmode if isinstance(rawmode, str) else None


def _tiff_sample_bits(pil: PILImage.Image) -> int:
    bits = pil.tag_v2.get(258, (8,))  # BitsPerSample
    return max(bits) if isinstance(bits, tuple) else int(bits)


_SIXTEEN_BIT_COLOUR = ("RGB;16B", "RGB;16L", "RGB;16N", "RGBA;16B", "RGBA;16L", "RGBA;16N")


def _low_byte_rawmode(rawmode: str) -> str:
    """The unpacker that reads the low byte of each sample that ``rawmode`` reads the high of."""
    base, order = rawmode.split(";")
    if order == "16N":
        order = "16L" if sys.byteorder == "little" else "16B"
    return f"{base};{'16L' if order == '16B' else '16B'}"


def _decode_sixteen_bit_colour(path: Path, pil: PILImage.Image, rawmode: str) -> np.ndarray:
    """(H, W, 3|4) uint16 of a 16-bit RGB(A) file Pillow would truncate to 8 bits."""
    pil.load()
    high = np.asarray(pil)
    with PILImage.open(path) as second:
        low_rawmode = _low_byte_rawmode(rawmode)
        second.tile = [_with_rawmode(tile, low_rawmode) for tile in second.tile]
        second.load()
        low = np.asarray(second)
    if high.shape != low.shape:
        raise DataError(f"{path}: the 16-bit decoder gave inconsistent results; convert the file")
    return (high.astype(np.uint16) << 8) | low


def _decode_sixteen_bit_gray_alpha_png(pil: PILImage.Image) -> np.ndarray:
    """(H, W, 2) uint16 of a 16-bit gray+alpha PNG: the RGBA unpacker copies the 4 raw bytes."""
    pil.tile = [_with_rawmode(tile, "RGBA") for tile in pil.tile]
    pil.load()
    raw = np.asarray(pil).astype(np.uint16)
    return np.stack([raw[..., 0] << 8 | raw[..., 1], raw[..., 2] << 8 | raw[..., 3]], axis=-1)


def _decode_with_pillow(path: Path, pil: PILImage.Image, fmt: str) -> _Decoded:
    rawmode = _tile_rawmode(pil)
    icc = pil.info.get("icc_profile")
    if fmt == "TIFF" and _tiff_sample_bits(pil) > 8 and not pil.mode.startswith("I;16"):
        return _decode_deep_tiff(path, pil, rawmode)
    if fmt == "PNG" and rawmode in _SIXTEEN_BIT_COLOUR:
        values = _decode_sixteen_bit_colour(path, pil, rawmode)
        bit_depth = 16
    elif fmt == "PNG" and rawmode == "LA;16B":
        values = _decode_sixteen_bit_gray_alpha_png(pil)
        bit_depth = 16
    else:
        pil.load()
        icc = pil.info.get("icc_profile")
        values, bit_depth = _pillow_values(path, pil, fmt)
        if pil.mode == "CMYK" and icc:
            logger.info("%s: the CMYK ICC profile is dropped after conversion to RGB", path)
            icc = None
    orientation, exif = _orientation_and_exif(pil, fmt, path)
    return _split_alpha(values, bit_depth, fmt, icc or None, exif, orientation)


def _pillow_values(path: Path, pil: PILImage.Image, fmt: str) -> tuple[np.ndarray, int]:
    """Integer pixels of a loaded Pillow image whose mode Pillow decodes at full depth."""
    mode = pil.mode
    if mode.startswith("I;16") or (mode == "I" and fmt == "PNG"):
        # Pillow before 10 decoded 16-bit gray PNG to the 32-bit mode "I".
        return np.asarray(pil).astype(np.uint16), 16
    if mode in ("L", "LA", "RGB", "RGBA"):
        return np.asarray(pil), 8
    if mode == "1":
        target = "L"
    elif mode == "P":
        target = "RGBA" if "transparency" in pil.info else "RGB"
    elif mode in ("PA", "La", "RGBa"):
        target = "RGBA" if mode != "La" else "LA"
    elif mode in ("CMYK", "YCbCr", "HSV", "RGBX", "LAB"):
        target = "RGB"
    else:
        raise DataError(
            f"{path}: unsupported pixel mode {mode!r} ({fmt}); convert it to 8- or 16-bit "
            "grayscale or RGB"
        )
    return np.asarray(pil.convert(target)), 8


def _decode_deep_tiff(path: Path, pil: PILImage.Image, rawmode: str | None) -> _Decoded:
    """A TIFF with more than 8 bits per sample that Pillow cannot decode at full depth."""
    try:
        return _decode_with_tifffile(path)
    except DataError:
        raise
    except Exception as error:
        # tifffile is missing or lacks the codec (LZW and JPEG need imagecodecs): decode twice
        # with Pillow, which is right for interleaved (contiguous) samples only.
        if rawmode not in _SIXTEEN_BIT_COLOUR or pil.tag_v2.get(284, 1) != 1:
            raise DataError(
                f"{path}: cannot decode this {_tiff_sample_bits(pil)}-bit TIFF ({error}); "
                "install tifffile and imagecodecs (`pip install tifffile imagecodecs`) or "
                "convert it to a 16-bit PNG"
            ) from error
    values = _decode_sixteen_bit_colour(path, pil, rawmode)
    orientation, _ = _orientation_and_exif(pil, "TIFF", path)
    icc = pil.info.get("icc_profile") or None
    return _split_alpha(values, 16, "TIFF", icc, None, orientation)


def _split_alpha(
    values: np.ndarray,
    bit_depth: int,
    fmt: str,
    icc: bytes | None,
    exif: bytes | None,
    orientation: int,
) -> _Decoded:
    if values.ndim == 2:
        values = values[:, :, None]
    alpha = None
    if values.shape[2] in (2, 4):
        alpha = values[:, :, -1]
        values = values[:, :, :-1]
    values = _orient(values, orientation)
    if alpha is not None:
        alpha = _orient(alpha, orientation)
    return _Decoded(values, alpha, bit_depth, fmt, icc, exif, orientation)


def _import_tifffile(path: Path, purpose: str) -> Any:
    try:
        import tifffile
    except ImportError as error:
        raise DataError(
            f"{path}: {purpose} needs the tifffile package; install it with `pip install tifffile`"
        ) from error
    return tifffile


def _decode_with_tifffile(path: Path) -> _Decoded:
    """TIFFs with 16-bit samples that Pillow cannot decode at full depth (ImportError if
    tifffile is missing, ValueError if it lacks the codec)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        values = page.asarray()
        axes = page.axes
        photometric = int(page.photometric)
        icc_tag = page.tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None else None
        orientation_tag = page.tags.get(274)
        orientation = int(orientation_tag.value) if orientation_tag is not None else 1
    if "S" in axes and axes.index("S") == 0:
        values = np.moveaxis(values, 0, -1)
    if values.dtype not in (np.uint8, np.uint16) or values.ndim not in (2, 3):
        raise DataError(
            f"{path}: unsupported TIFF layout (dtype {values.dtype}, axes {axes}); convert it "
            "to an 8- or 16-bit grayscale or RGB TIFF"
        )
    channels = 1 if values.ndim == 2 else values.shape[2]
    expected = {1: (1, 2), 2: (3, 4)}.get(photometric, ())
    if channels not in expected:
        raise DataError(
            f"{path}: unsupported TIFF photometric {photometric} with {channels} samples; "
            "convert it to grayscale or RGB"
        )
    bit_depth = 16 if values.dtype == np.uint16 else 8
    if orientation not in range(1, 9):
        orientation = 1
    return _split_alpha(values, bit_depth, "TIFF", icc, None, orientation)


def _is_tiff(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(4) in (b"II*\x00", b"MM\x00*")


def _decode(path: str | os.PathLike[str]) -> _Decoded:
    file = Path(path)
    if not file.exists():
        raise DataError(f"image file {file} does not exist; check the path")
    if not file.is_file():
        raise DataError(f"{file} is not a file; give the path of an image")
    if file.stat().st_size == 0:
        raise DataError(f"image file {file} is empty (0 bytes); re-copy or re-export it")
    try:
        pil = PILImage.open(file)
    except UnidentifiedImageError as error:
        if _is_tiff(file):
            return _decode_tiff_fallback(file, error)
        raise DataError(
            f"{file} is not an image Pillow can read (not PNG, JPEG, TIFF, BMP or WebP, or "
            "a damaged header); check that the file is really an image"
        ) from error
    except PILImage.DecompressionBombError as error:
        raise DataError(
            f"{file}: {error}; raise PIL.Image.MAX_IMAGE_PIXELS if you trust this file"
        ) from error
    except OSError as error:
        raise DataError(f"{file} cannot be opened ({error}); check permissions") from error
    with pil:
        fmt = "JPEG" if pil.format == "MPO" else str(pil.format)
        if fmt not in SUPPORTED_FORMATS:
            raise DataError(
                f"{file} is a {fmt} image; supported formats are {', '.join(SUPPORTED_FORMATS)}: "
                "convert it to PNG"
            )
        try:
            return _decode_with_pillow(file, pil, fmt)
        except DataError:
            raise
        except (OSError, SyntaxError, ValueError, EOFError, struct.error, zlib.error) as error:
            if fmt == "TIFF":
                return _decode_tiff_fallback(file, error)
            raise DataError(
                f"{file} is corrupt or truncated ({fmt}: {error}); re-copy or re-export it"
            ) from error


def _decode_tiff_fallback(file: Path, pillow_error: Exception) -> _Decoded:
    try:
        return _decode_with_tifffile(file)
    except DataError:
        raise
    except Exception as error:
        raise DataError(
            f"{file} is a TIFF that neither Pillow ({pillow_error}) nor tifffile ({error}) "
            "can decode; convert it to an uncompressed 8- or 16-bit TIFF or PNG"
        ) from error


def read_image(path: str | os.PathLike[str]) -> Image:
    """Read an image file (see the module docstring for formats and conversions).

    Args:
        path: the file.

    Returns:
        The :class:`Image` with float32 ``pixels`` ``(C, H, W)`` in ``[0, 1]``.

    Raises:
        DataError: missing, empty, corrupt, truncated or unsupported file; the message names
            the file and the problem.
    """
    decoded = _decode(path)
    alpha = from_integer(decoded.alpha) if decoded.alpha is not None else None
    return Image(
        pixels=from_integer(decoded.array),
        alpha=alpha,
        bit_depth=decoded.bit_depth,
        format=decoded.format,
        icc_profile=decoded.icc_profile,
        exif=decoded.exif,
        path=Path(path),
        orientation=decoded.orientation,
    )


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """The integer pixels of an image file, upright, without alpha.

    For data loaders that crop before converting (4x less memory than float32 and no wasted
    conversion of pixels that are thrown away); convert crops with :func:`from_integer`.

    Returns:
        numpy ``(H, W, C)``, ``C = 1`` or ``3``; uint8 for 8-bit files, uint16 for 16-bit ones.

    Raises:
        DataError: as :func:`read_image`.
    """
    return _decode(path).array


def image_area(path: str | os.PathLike[str]) -> int:
    """Number of pixels ``H * W`` of an image file, read from its header without decoding.

    Raises:
        DataError: missing or unreadable file.
    """
    file = Path(path)
    try:
        with PILImage.open(file) as pil:
            width, height = pil.size
    except FileNotFoundError as error:
        raise DataError(f"image file {file} does not exist; check the path") from error
    except (OSError, SyntaxError, ValueError) as error:
        if file.is_file() and _is_tiff(file):
            height, width = _decode(file).array.shape[:2]
            return int(height * width)
        raise DataError(f"{file} is not a readable image ({error}); check the file") from error
    return int(width * height)


# ----- writing


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _paeth(left: np.ndarray, above: np.ndarray, upper_left: np.ndarray) -> np.ndarray:
    estimate = left + above - upper_left
    distance_left = np.abs(estimate - left)
    distance_above = np.abs(estimate - above)
    distance_upper_left = np.abs(estimate - upper_left)
    return np.where(
        (distance_left <= distance_above) & (distance_left <= distance_upper_left),
        left,
        np.where(distance_above <= distance_upper_left, above, upper_left),
    )


def _filter_png_rows(rows: np.ndarray, bytes_per_pixel: int) -> np.ndarray:
    """PNG-filter every row with the filter that minimises the sum of |signed byte| (libpng's
    heuristic). ``rows``: (H, N) uint8 -> (H, N + 1) uint8, the filter type first."""
    height, width = rows.shape
    out = np.empty((height, width + 1), dtype=np.uint8)
    # Blocks of rows keep the five candidate filterings (int16) to a few MiB.
    block = max(1, (1 << 21) // max(width, 1))
    for start in range(0, height, block):
        stop = min(height, start + block)
        current = rows[start:stop].astype(np.int16)
        above = np.zeros_like(current)
        above[1:] = current[:-1]
        if start > 0:
            above[0] = rows[start - 1]
        left = np.zeros_like(current)
        left[:, bytes_per_pixel:] = current[:, :-bytes_per_pixel]
        upper_left = np.zeros_like(current)
        upper_left[:, bytes_per_pixel:] = above[:, :-bytes_per_pixel]
        candidates = np.stack(
            [
                current,
                current - left,
                current - above,
                current - (left + above) // 2,
                current - _paeth(left, above, upper_left),
            ]
        ).astype(np.uint8)  # wraps modulo 256, as the PNG filters are defined
        cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)
        choice = cost.argmin(axis=0)
        out[start:stop, 0] = choice
        out[start:stop, 1:] = candidates[choice, np.arange(stop - start)]
    return out


def _encode_png16(values: np.ndarray, icc_profile: bytes | None, exif: bytes | None) -> bytes:
    """A 16-bit PNG of ``values`` (H, W, C) uint16, C = 1 (gray), 2 (+alpha), 3 (RGB), 4 (RGBA)."""
    height, width, channels = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    rows = values.astype(">u2").reshape(height, width * channels).view(np.uint8)
    filtered = _filter_png_rows(rows, bytes_per_pixel=2 * channels)
    parts = [
        b"\x89PNG\r\n\x1a\n",
        _png_chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, 0)),
    ]
    if icc_profile:
        parts.append(_png_chunk(b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc_profile)))
    if exif:
        parts.append(_png_chunk(b"eXIf", exif.removeprefix(_EXIF_PREFIX)))
    data = zlib.compress(filtered.tobytes(), 6)
    chunk_size = 1 << 20
    parts.extend(
        _png_chunk(b"IDAT", data[start : start + chunk_size])
        for start in range(0, max(len(data), 1), chunk_size)
    )
    parts.append(_png_chunk(b"IEND", b""))
    return b"".join(parts)


def _write_tiff16(
    tifffile: Any, tmp: Path, values: np.ndarray, has_alpha: bool, colour: bool, icc: bytes | None
) -> None:
    tifffile.imwrite(
        tmp,
        values if values.shape[2] > 1 else values[:, :, 0],
        photometric="rgb" if colour else "minisblack",
        planarconfig="contig" if values.shape[2] > 1 else None,
        extrasamples=("unassalpha",) if has_alpha else None,
        compression="zlib",
        iccprofile=icc,
        metadata=None,
    )


def _suffix_format(path: Path) -> str:
    fmt = _FORMAT_BY_SUFFIX.get(path.suffix.lower())
    if fmt is None:
        raise ConfigError(
            f"cannot write {path}: unknown image suffix {path.suffix!r}; use one of "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return fmt


def write_image(
    path: str | os.PathLike[str],
    pixels: torch.Tensor,
    *,
    like: Image | None = None,
    bit_depth: int | None = None,
    quality: int = 95,
    alpha: torch.Tensor | None = None,
    icc_profile: bytes | None = None,
    exif: bytes | None = None,
    overwrite: bool = False,
) -> Path:
    """Write ``pixels`` to ``path`` atomically, in the format its suffix names.

    Quantisation: clamp to ``[0, 1]``, multiply by 255 or 65535 in float32, round half to even.

    What each format keeps (anything else is dropped, with a log message):

    ========  ==========  =====  ===  ====  ============================================
    format    bit depths  alpha  ICC  EXIF  notes
    ========  ==========  =====  ===  ====  ============================================
    PNG       8, 16       yes    yes  yes   lossless
    TIFF      8, 16       yes    yes  no    deflate; 16-bit needs ``tifffile``
    JPEG      8           no     yes  yes   ``quality``, 4:4:4 chroma (no subsampling)
    WebP      8           yes    yes  yes   ``quality``; ``quality=100`` is lossless; RGB only
    BMP       8           no     no   no
    ========  ==========  =====  ===  ====  ============================================

    Args:
        path: destination; its suffix (any case) chooses the format.
        pixels: float tensor ``(C, H, W)``, ``C = 1`` or ``3``, values in ``[0, 1]``.
        like: the image this one was made from; ``bit_depth``, ``alpha`` (when its size
            matches), ``icc_profile`` and ``exif`` default to its values. Its file is never
            overwritten.
        bit_depth: 8 or 16; default that of ``like``, else 8. A 16-bit ``like`` written to an
            8-bit-only format gives 8 bits; asking for 16 explicitly there is an error.
        quality: 1..100, for JPEG and WebP.
        alpha: float tensor ``(1, H, W)`` in ``[0, 1]``, or ``None``.
        icc_profile: ICC profile bytes to embed.
        exif: EXIF block (as in :attr:`Image.exif`).
        overwrite: replace an existing file (never ``like``'s own file).

    Returns:
        ``path``.

    Raises:
        DataError: the file exists and ``overwrite`` is false, or it is ``like``'s input file.
        ConfigError: unknown suffix, bad ``bit_depth`` or ``quality``.
        ShapeError: ``pixels`` or ``alpha`` of the wrong shape or dtype.
    """
    file = Path(path)
    fmt = _suffix_format(file)
    _check_chw(pixels, "pixels")
    if pixels.shape[0] not in (1, 3):
        raise ShapeError(
            f"pixels must have 1 (gray) or 3 (RGB) channels, got {pixels.shape[0]}; pass "
            "the alpha channel through alpha="
        )
    if like is not None:
        bit_depth_default = like.bit_depth
        if alpha is None and like.alpha is not None:
            if like.alpha.shape[1:] == pixels.shape[1:]:
                alpha = like.alpha
            else:
                logger.warning("%s: alpha of %s has another size; not written", file, like.path)
        icc_profile = icc_profile if icc_profile is not None else like.icc_profile
        exif = exif if exif is not None else like.exif
    else:
        bit_depth_default = 8
    if bit_depth is None:
        bit_depth = 8 if fmt in _EIGHT_BIT_ONLY else bit_depth_default
    if bit_depth not in _MAXIMUM:
        raise ConfigError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and fmt in _EIGHT_BIT_ONLY:
        raise ConfigError(
            f"cannot write {file}: {fmt} holds 8 bits per sample only; use .png or .tif for "
            "16 bits, or bit_depth=8"
        )
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"quality must be an integer in 1..100, got {quality!r}")
    if alpha is not None:
        _check_chw(alpha, "alpha")
        if alpha.shape[0] != 1 or alpha.shape[1:] != pixels.shape[1:]:
            raise ShapeError(
                f"alpha must have shape (1, {pixels.shape[1]}, {pixels.shape[2]}), "
                f"got {tuple(alpha.shape)}"
            )
        if fmt in ("JPEG", "BMP"):
            logger.warning("%s: %s has no alpha channel; alpha not written", file, fmt)
            alpha = None
    if like is not None and file.exists() and file.resolve() == like.path.resolve():
        raise DataError(
            f"refusing to write {file}: it is the input image; choose another output path"
        )
    if file.exists() and not overwrite:
        raise DataError(f"{file} already exists; choose another output path or pass overwrite=True")

    needs_tifffile = bit_depth == 16 and fmt == "TIFF"
    tifffile = _import_tifffile(file, "writing a 16-bit TIFF") if needs_tifffile else None
    values = to_integer(pixels, bit_depth)
    if alpha is not None:
        values = np.concatenate([values, to_integer(alpha, bit_depth)], axis=2)
    with atomic_path(file) as tmp:
        if bit_depth == 16 and fmt == "PNG":
            tmp.write_bytes(_encode_png16(values, icc_profile, exif))
        elif bit_depth == 16:
            _write_tiff16(
                tifffile, tmp, values, alpha is not None, pixels.shape[0] == 3, icc_profile
            )
        else:
            _save_with_pillow(tmp, values, fmt, quality, icc_profile, exif)
    return file


def _save_with_pillow(
    tmp: Path,
    values: np.ndarray,
    fmt: str,
    quality: int,
    icc_profile: bytes | None,
    exif: bytes | None,
) -> None:
    if fmt == "WEBP" and values.shape[2] in (1, 2):
        # WebP stores colour only: a gray image is written as three equal channels.
        values = np.concatenate([values[:, :, :1]] * 3 + [values[:, :, 1:]], axis=2)
    picture = PILImage.fromarray(values[:, :, 0] if values.shape[2] == 1 else values)
    options: dict[str, Any] = {}
    if icc_profile and fmt != "BMP":
        options["icc_profile"] = icc_profile
    if exif and fmt in ("PNG", "JPEG", "WEBP"):
        options["exif"] = exif
    if fmt == "JPEG":
        options.update(quality=quality, subsampling=0)
    elif fmt == "WEBP":
        options.update(quality=quality, lossless=quality == 100)
    elif fmt == "TIFF" and pil_features.check("libtiff"):
        options["compression"] = "tiff_adobe_deflate"
    picture.save(tmp, format=fmt, **options)
