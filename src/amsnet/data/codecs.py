"""Image codecs behind :mod:`amsnet.data.io`: image files to integer pixel arrays and back.

Use :mod:`amsnet.data.io` (:func:`~amsnet.data.io.read_image`,
:func:`~amsnet.data.io.write_image`); this module holds what those functions call to decode and
encode files: integer pixels ``(H, W, C)`` uint8 or uint16 in an
:class:`amsnet.data.images.Image`, no float conversion (that is :mod:`amsnet.data.images`').

Reading (:func:`decode`): the format is recognised from the file's content, not its suffix.
Pillow decodes PNG, JPEG (and camera MPO files, read as their first JPEG), TIFF (first page),
BMP and WebP; the EXIF orientation is applied to the pixels and reset to 1 in the EXIF block
that is kept; alpha is split off.

16-bit colour: Pillow 13 decodes 16-bit RGB and RGBA PNG and TIFF files to 8 bits (it keeps
the high byte of every sample) and cannot open 16-bit gray+alpha TIFFs. For PNG we keep
Pillow's decoder, which handles every filter and interlacing, and run it twice: once for the
high bytes (its normal output) and once with the unpacker of the opposite byte order, which
yields the low bytes; 16-bit gray+alpha PNGs are decoded once with a byte-copying unpacker.
TIFFs with more than 8 bits per sample (except plain gray, which Pillow reads exactly) are read
with ``tifffile``; where it is missing or lacks the codec (LZW and JPEG need ``imagecodecs``),
interleaved 16-bit RGB(A) TIFFs fall back to the same two-pass Pillow decoding.

Writing: 16-bit PNGs are encoded here with numpy and zlib (:func:`encode_png16`, per-row filter
chosen by libpng's minimum-sum heuristic); 16-bit TIFFs are written with ``tifffile``
(:func:`write_tiff16`); everything else is written by Pillow (:func:`save_with_pillow`).
"""

from __future__ import annotations

import logging
import os
import struct
import sys
import zlib
from pathlib import Path
from typing import Any

import numpy as np
from PIL import features as pil_features
from PIL import Image as PILImage
from PIL import UnidentifiedImageError

from amsnet.data.images import Image
from amsnet.errors import DataError

logger = logging.getLogger(__name__)

SUPPORTED_FORMATS: tuple[str, ...] = ("PNG", "JPEG", "TIFF", "BMP", "WEBP")
"""The file formats :func:`decode` reads (Pillow's names; MPO is read as JPEG)."""

UNSUPPORTED_WHY = {
    "GIF": " (a palette of at most 256 colours per frame; animations)",
    "ICO": " (an icon)",
}
"""Why some formats Pillow opens are refused, for the message."""

_ORIENTATION_TAG = 0x0112
_EXIF_PREFIX = b"Exif\x00\x00"


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


def _decode_with_pillow(path: Path, pil: PILImage.Image, fmt: str) -> Image:
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
    return _split_alpha(path, values, bit_depth, fmt, icc or None, exif, orientation)


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


def _decode_deep_tiff(path: Path, pil: PILImage.Image, rawmode: str | None) -> Image:
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
    return _split_alpha(path, values, 16, "TIFF", icc, None, orientation)


def _split_alpha(
    path: Path,
    values: np.ndarray,
    bit_depth: int,
    fmt: str,
    icc: bytes | None,
    exif: bytes | None,
    orientation: int,
) -> Image:
    if values.ndim == 2:
        values = values[:, :, None]
    alpha = None
    if values.shape[2] in (2, 4):
        alpha = values[:, :, -1]
        values = values[:, :, :-1]
    values = _orient(values, orientation)
    if alpha is not None:
        alpha = _orient(alpha, orientation)
    return Image(
        array=values,
        alpha_array=alpha,
        bit_depth=bit_depth,
        format=fmt,
        icc_profile=icc,
        exif=exif,
        orientation=orientation,
        path=path,
    )


def import_tifffile(path: Path, purpose: str) -> Any:
    """The ``tifffile`` module, or a :class:`DataError` naming ``path`` and ``purpose``."""
    try:
        import tifffile
    except ImportError as error:
        raise DataError(
            f"{path}: {purpose} needs the tifffile package; install it with `pip install tifffile`"
        ) from error
    return tifffile


def _decode_with_tifffile(path: Path) -> Image:
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
    return _split_alpha(path, values, bit_depth, "TIFF", icc, None, orientation)


def is_tiff(path: Path) -> bool:
    """Whether the file starts with a TIFF signature (either byte order)."""
    with open(path, "rb") as handle:
        return handle.read(4) in (b"II*\x00", b"MM\x00*")


def decode(path: str | os.PathLike[str]) -> Image:
    """Decode an image file to upright integer pixels (see the module docstring).

    Returns:
        :class:`~amsnet.data.images.Image`: ``array`` ``(H, W, C)``, ``C = 1`` or ``3``,
        uint8 for 8-bit files and uint16 for 16-bit ones, ``alpha_array`` ``(H, W)`` of the
        same dtype or ``None``; ``path`` as given.

    Raises:
        DataError: missing, empty, corrupt, truncated or unsupported file; the message names
            the file and the problem.
    """
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
        if is_tiff(file):
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
            why = UNSUPPORTED_WHY.get(fmt, "")
            raise DataError(
                f"{file} is a {fmt} image{why}; supported formats are "
                f"{', '.join(SUPPORTED_FORMATS)}: convert it to PNG"
            )
        pages = int(getattr(pil, "n_frames", 1)) if fmt == "TIFF" else 1
        if pages > 1:
            logger.warning(
                "%s has %d pages; only page 1 is read (and denoised); split the others into "
                "their own files to denoise them",
                file,
                pages,
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


def _decode_tiff_fallback(file: Path, pillow_error: Exception) -> Image:
    try:
        return _decode_with_tifffile(file)
    except DataError:
        raise
    except Exception as error:
        raise DataError(
            f"{file} is a TIFF that neither Pillow ({pillow_error}) nor tifffile ({error}) "
            "can decode; convert it to an uncompressed 8- or 16-bit TIFF or PNG"
        ) from error


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


def encode_png16(values: np.ndarray, icc_profile: bytes | None, exif: bytes | None) -> bytes:
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


def write_tiff16(
    tifffile: Any, tmp: Path, values: np.ndarray, has_alpha: bool, colour: bool, icc: bytes | None
) -> None:
    """Write ``values`` (H, W, C) uint16 as a deflate-compressed TIFF with ``tifffile``.

    ``C`` is 1 (gray), 2 (gray + alpha), 3 (RGB) or 4 (RGBA); ``has_alpha`` says whether the
    last channel is alpha and ``colour`` whether the others are RGB.
    """
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


def save_with_pillow(
    tmp: Path,
    values: np.ndarray,
    fmt: str,
    quality: int,
    icc_profile: bytes | None,
    exif: bytes | None,
) -> None:
    """Write ``values`` (H, W, C) uint8 with Pillow in format ``fmt`` (``C`` as for
    :func:`write_tiff16`); ``quality`` is for JPEG and WebP (100 is lossless WebP)."""
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
