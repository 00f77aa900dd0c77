"""Image files in and out: where float tensors meet pixel ranges, dtypes and file formats.

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
* Alpha is split off into :attr:`Image.alpha_array` (float: :attr:`Image.alpha`) and never
  touches the colour values.
* The EXIF orientation tag is applied, so ``pixels`` are upright; the tag in
  :attr:`Image.exif` is then set to 1 so that a writer does not rotate the image a second time.
  EXIF is kept for JPEG, PNG and WebP; a TIFF's tags are its own structure, so only the
  orientation is taken from them.

16-bit colour files are decoded at their full depth, also where Pillow alone would give 8 bits
(:mod:`amsnet.data.codecs` holds the decoders and encoders and says how); 16-bit TIFFs that
Pillow cannot decode, and every 16-bit TIFF written, need ``tifffile``.

Writing (:func:`write_image`): float values are clamped to ``[0, 1]``, multiplied by 255 (or
65535) in float32 and rounded half to even (``torch.round``), the same quantisation as the
official AMSNet evaluation (``np.round`` of ``x * 255``). 16-bit PNGs are encoded with numpy
and zlib, 16-bit TIFFs with ``tifffile``; everything else is written by Pillow.

The record a file is read into (:class:`~amsnet.data.images.Image`) and the conversions between
integer, float, gray and RGB pixels (:func:`from_integer`, :func:`to_integer`, :func:`as_rgb`,
:func:`restore_channels`, ...) are :mod:`amsnet.data.images`'; they are re-exported here.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image as PILImage

from amsnet.atomic import atomic_path
from amsnet.data.codecs import (
    decode,
    encode_png16,
    import_tifffile,
    is_tiff,
    save_with_pillow,
    SUPPORTED_FORMATS,
    write_tiff16,
)
from amsnet.data.images import (
    as_rgb,
    from_integer,
    from_uint8,
    from_uint16,
    Image,
    restore_channels,
    rgb_to_integer,
    to_integer,
    to_uint8,
    to_uint16,
)
from amsnet.errors import ConfigError, DataError, ShapeError
from amsnet.ops.checks import check_image_tensor

logger = logging.getLogger(__name__)

# The conversions and the record live in amsnet.data.images; they are re-exported here, where
# the readers and writers that produce and take them are.
__all__ = [
    "EIGHT_BIT_ONLY",
    "IMAGE_SUFFIXES",
    "SUPPORTED_FORMATS",
    "WITHOUT_ALPHA",
    "Image",
    "ImageHeader",
    "as_rgb",
    "format_for_suffix",
    "from_integer",
    "from_uint8",
    "from_uint16",
    "image_area",
    "image_header",
    "image_size",
    "is_image_file",
    "read_array",
    "read_image",
    "read_integer_image",
    "restore_channels",
    "rgb_to_integer",
    "to_integer",
    "to_uint8",
    "to_uint16",
    "write_image",
]

IMAGE_SUFFIXES: tuple[str, ...] = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp")
"""Suffixes of the files the folder readers treat as images (compared case-insensitively)."""

_FORMAT_BY_SUFFIX = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
    ".webp": "WEBP",
}
EIGHT_BIT_ONLY: tuple[str, ...] = ("JPEG", "BMP", "WEBP")
"""Formats that hold 8 bits per sample only."""
WITHOUT_ALPHA: tuple[str, ...] = ("JPEG", "BMP")
"""Formats :func:`write_image` writes without an alpha channel."""
_BIT_DEPTHS = (8, 16)


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


# ----- reading


def read_image(path: str | os.PathLike[str]) -> Image:
    """Read an image file (see the module docstring for formats and conversions).

    The record holds the integer pixels (``array``, ``alpha_array``); its float views
    (``pixels``, ``alpha``, ``rgb``) are made when first asked for, so a huge photo that is
    denoised in tiles never exists as a float copy (an 8-bit 6000x4000 image is 72 MB as
    uint8 against 288 MB as float32): convert regions with :func:`from_integer` and write
    results back with :func:`write_image` given an integer array.

    Args:
        path: the file.

    Returns:
        The :class:`~amsnet.data.images.Image`: ``array`` ``(H, W, C)`` uint8 or uint16 and
        ``pixels`` float32 ``(C, H, W)`` in ``[0, 1]``, upright, with the file's metadata.

    Raises:
        DataError: missing, empty, corrupt, truncated or unsupported file; the message names
            the file and the problem.
    """
    return decode(path)


read_integer_image = read_image
"""The name for callers that use the integer pixels only (:func:`read_image`)."""


def read_array(path: str | os.PathLike[str]) -> np.ndarray:
    """The integer pixels of an image file, upright, without alpha.

    For data loaders that crop before converting (4x less memory than float32 and no wasted
    conversion of pixels that are thrown away); convert crops with :func:`from_integer`.

    Returns:
        numpy ``(H, W, C)``, ``C = 1`` or ``3``; uint8 for 8-bit files, uint16 for 16-bit ones.

    Raises:
        DataError: as :func:`read_image`.
    """
    return decode(path).array


@dataclass(frozen=True)
class ImageHeader:
    """What an image file's header says, read without decoding the pixels.

    Attributes:
        height, width: as decoded (upright: EXIF orientations 5-8 swap the header's sides).
        format: Pillow's name (``"PNG"``, ``"JPEG"``, ``"TIFF"``, ...; MPO is ``"JPEG"``).
        has_alpha: an alpha channel or a transparent palette entry.
    """

    height: int
    width: int
    format: str
    has_alpha: bool


_ALPHA_MODES = ("RGBA", "LA", "PA", "RGBa", "La", "I;16A")


def image_header(path: str | os.PathLike[str]) -> ImageHeader:
    """The header of an image file (see :class:`ImageHeader`).

    Raises:
        DataError: missing, unreadable or over-large file (Pillow's decompression-bomb limit).
    """
    file = Path(path)
    try:
        with PILImage.open(file) as pil:
            width, height = pil.size
            orientation = int(pil.getexif().get(0x0112, 1)) if hasattr(pil, "getexif") else 1
            fmt = "JPEG" if pil.format == "MPO" else str(pil.format)
            alpha = pil.mode in _ALPHA_MODES or "transparency" in pil.info
    except FileNotFoundError as error:
        raise DataError(f"image file {file} does not exist; check the path") from error
    except PILImage.DecompressionBombError as error:
        raise DataError(
            f"{file}: {error}; raise PIL.Image.MAX_IMAGE_PIXELS if you trust this file"
        ) from error
    except (OSError, SyntaxError, ValueError) as error:
        if file.is_file() and is_tiff(file):
            decoded = decode(file)
            height, width = decoded.array.shape[:2]
            return ImageHeader(int(height), int(width), "TIFF", decoded.alpha_array is not None)
        raise DataError(f"{file} is not a readable image ({error}); check the file") from error
    if orientation in (5, 6, 7, 8):
        height, width = width, height
    return ImageHeader(int(height), int(width), fmt, bool(alpha))


def image_area(path: str | os.PathLike[str]) -> int:
    """Number of pixels ``H * W`` of an image file, read from its header without decoding.

    Raises:
        DataError: missing or unreadable file.
    """
    header = image_header(path)
    return header.height * header.width


def image_size(path: str | os.PathLike[str]) -> tuple[int, int]:
    """``(height, width)`` of an image file as decoded (upright), from its header.

    Raises:
        DataError: missing or unreadable file.
    """
    header = image_header(path)
    return header.height, header.width


# ----- writing


def format_for_suffix(path: str | os.PathLike[str]) -> str | None:
    """The format :func:`write_image` writes for ``path``'s suffix (any case), or ``None``.

    Example:
        >>> format_for_suffix("out/photo.JPEG"), format_for_suffix("notes.txt")
        ('JPEG', None)
    """
    return _FORMAT_BY_SUFFIX.get(Path(path).suffix.lower())


def _suffix_format(path: Path) -> str:
    fmt = format_for_suffix(path)
    if fmt is None:
        raise ConfigError(
            f"cannot write {path}: unknown image suffix {path.suffix!r}; use one of "
            f"{', '.join(IMAGE_SUFFIXES)}"
        )
    return fmt


def write_image(
    path: str | os.PathLike[str],
    pixels: torch.Tensor | np.ndarray,
    *,
    like: Image | None = None,
    bit_depth: int | None = None,
    quality: int = 95,
    alpha: torch.Tensor | np.ndarray | None = None,
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
        pixels: float tensor ``(C, H, W)``, ``C = 1`` or ``3``, values in ``[0, 1]``; or an
            already quantised numpy array ``(H, W, C)`` of uint8 / uint16 (then the bit depth
            is the array's: huge images need no float copy).
        like: the image this one was made from; ``bit_depth``, ``alpha`` (when its size
            matches), ``icc_profile`` and ``exif`` default to its values. Its file is never
            overwritten.
        bit_depth: 8 or 16; default that of ``like``, else 8. A 16-bit ``like`` written to an
            8-bit-only format gives 8 bits; asking for 16 explicitly there is an error.
        quality: 1..100, for JPEG and WebP.
        alpha: float tensor ``(1, H, W)`` in ``[0, 1]``, an integer array ``(H, W)`` of the
            pixels' dtype, or ``None``.
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
    integer = isinstance(pixels, np.ndarray)
    if integer:
        if pixels.dtype not in (np.uint8, np.uint16) or pixels.ndim != 3:
            raise ShapeError(
                f"an array of pixels must be (H, W, C) uint8 or uint16, got {pixels.shape} "
                f"{pixels.dtype}; pass float images as (C, H, W) tensors"
            )
        array_depth = 8 if pixels.dtype == np.uint8 else 16
        if bit_depth is not None and bit_depth != array_depth:
            raise ConfigError(f"bit_depth {bit_depth} contradicts the {pixels.dtype} array")
        bit_depth = array_depth
        channels, size = pixels.shape[2], pixels.shape[:2]
    else:
        check_image_tensor(pixels, "pixels", ndim=3)
        channels, size = pixels.shape[0], tuple(pixels.shape[1:])
    if channels not in (1, 3):
        raise ShapeError(
            f"pixels must have 1 (gray) or 3 (RGB) channels, got {channels}; pass "
            "the alpha channel through alpha="
        )
    if like is not None:
        bit_depth_default = like.bit_depth
        if alpha is None and like.alpha_array is not None:
            if tuple(like.alpha_array.shape) == tuple(size):
                alpha = like.alpha
            else:
                logger.warning("%s: alpha of %s has another size; not written", file, like.path)
        icc_profile = icc_profile if icc_profile is not None else like.icc_profile
        exif = exif if exif is not None else like.exif
    else:
        bit_depth_default = 8
    if bit_depth is None:
        bit_depth = 8 if fmt in EIGHT_BIT_ONLY else bit_depth_default
    if bit_depth not in _BIT_DEPTHS:
        raise ConfigError(f"bit_depth must be 8 or 16, got {bit_depth!r}")
    if bit_depth == 16 and fmt in EIGHT_BIT_ONLY:
        raise ConfigError(
            f"cannot write {file}: {fmt} holds 8 bits per sample only; use .png or .tif for "
            "16 bits, or 8 bits (--bit-depth 8, bit_depth=8 in Python)"
        )
    if isinstance(quality, bool) or not isinstance(quality, int) or not 1 <= quality <= 100:
        raise ConfigError(f"quality must be an integer in 1..100, got {quality!r}")
    if isinstance(alpha, np.ndarray):
        if alpha.shape != size or alpha.dtype != (np.uint8 if bit_depth == 8 else np.uint16):
            raise ShapeError(
                f"an alpha array must be ({size[0]}, {size[1]}) of the pixels' dtype, got "
                f"{alpha.shape} {alpha.dtype}"
            )
    elif alpha is not None:
        check_image_tensor(alpha, "alpha", ndim=3)
        if alpha.shape[0] != 1 or tuple(alpha.shape[1:]) != size:
            raise ShapeError(
                f"alpha must have shape (1, {size[0]}, {size[1]}), got {tuple(alpha.shape)}"
            )
    if alpha is not None and fmt in WITHOUT_ALPHA:
        logger.warning("%s: %s has no alpha channel; alpha not written", file, fmt)
        alpha = None
    if like is not None and file.exists() and file.resolve() == like.path.resolve():
        raise DataError(
            f"refusing to write {file}: it is the input image; choose another output path"
        )
    if file.exists() and not overwrite:
        raise DataError(
            f"{file} already exists; choose another output path or pass --overwrite "
            "(overwrite=True in Python)"
        )

    needs_tifffile = bit_depth == 16 and fmt == "TIFF"
    tifffile = import_tifffile(file, "writing a 16-bit TIFF") if needs_tifffile else None
    values = pixels if integer else to_integer(pixels, bit_depth)
    if isinstance(alpha, np.ndarray):
        values = np.concatenate([values, alpha[..., None]], axis=2)
    elif alpha is not None:
        values = np.concatenate([values, to_integer(alpha, bit_depth)], axis=2)
    with atomic_path(file) as tmp:
        if bit_depth == 16 and fmt == "PNG":
            tmp.write_bytes(encode_png16(values, icc_profile, exif))
        elif bit_depth == 16:
            write_tiff16(tifffile, tmp, values, alpha is not None, channels == 3, icc_profile)
        else:
            save_with_pillow(tmp, values, fmt, quality, icc_profile, exif)
    return file
