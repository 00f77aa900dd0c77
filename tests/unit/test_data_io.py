"""Image file reading and writing: formats, bit depths, metadata, quantisation, errors.

Every file is made here: 8-bit ones and TIFFs with Pillow and tifffile, 16-bit colour PNGs
with the small independent encoder below (Pillow cannot write them).
"""

from __future__ import annotations

import io
import struct
import sys
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from PIL import ImageOps

from amsnet.data.io import (
    as_rgb,
    from_uint8,
    from_uint16,
    image_area,
    is_image_file,
    read_array,
    read_image,
    restore_channels,
    to_uint8,
    to_uint16,
    write_image,
)
from amsnet.errors import ConfigError, DataError, ShapeError

RNG = np.random.default_rng(20240924)


# ----- a minimal, deliberately simple PNG encoder (one filter type for all rows)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def _filter(rows: np.ndarray, kind: int, step: int) -> np.ndarray:
    """Apply PNG filter ``kind`` to (H, N) uint8 rows with ``step`` bytes per pixel."""
    x = rows.astype(np.int32)
    up = np.vstack([np.zeros_like(x[:1]), x[:-1]])
    left = np.hstack([np.zeros_like(x[:, :step]), x[:, :-step]])
    upper_left = np.hstack([np.zeros_like(up[:, :step]), up[:, :-step]])
    if kind == 0:
        out = x
    elif kind == 1:
        out = x - left
    elif kind == 2:
        out = x - up
    elif kind == 3:
        out = x - (left + up) // 2
    else:
        p = left + up - upper_left
        pa, pb, pc = np.abs(p - left), np.abs(p - up), np.abs(p - upper_left)
        out = x - np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upper_left))
    return np.hstack([np.full((len(x), 1), kind), out % 256]).astype(np.uint8)


ADAM7 = [
    (0, 0, 8, 8),
    (0, 4, 8, 8),
    (4, 0, 8, 4),
    (0, 2, 4, 4),
    (2, 0, 4, 2),
    (0, 1, 2, 2),
    (1, 0, 2, 1),
]


def png16(values: np.ndarray, filter_kind: int = 0, interlaced: bool = False) -> bytes:
    """A 16-bit PNG of (H, W, C) uint16 values, C = 1..4."""
    height, width, channels = values.shape
    colour_type = {1: 0, 2: 4, 3: 2, 4: 6}[channels]
    passes = ADAM7 if interlaced else [(0, 0, 1, 1)]
    data = b""
    for row0, col0, row_step, col_step in passes:
        part = values[row0::row_step, col0::col_step]
        if part.size == 0:
            continue
        rows = part.astype(">u2").reshape(part.shape[0], -1).view(np.uint8)
        data += _filter(rows, filter_kind, 2 * channels).tobytes()
    header = struct.pack(">IIBBBBB", width, height, 16, colour_type, 0, 0, int(interlaced))
    return (
        b"\x89PNG\r\n\x1a\n"
        + _chunk(b"IHDR", header)
        + _chunk(b"IDAT", zlib.compress(data))
        + _chunk(b"IEND", b"")
    )


def every_uint16(channels: int) -> np.ndarray:
    """(256, 256, C) uint16 holding each of the 65536 values once per channel."""
    planes = [RNG.permutation(65536).astype(np.uint16).reshape(256, 256) for _ in range(channels)]
    return np.stack(planes, axis=-1)


def random_uint8(height: int, width: int, channels: int) -> np.ndarray:
    array = RNG.integers(0, 256, (height, width, channels), dtype=np.uint8)
    return array[:, :, 0] if channels == 1 else array


# ----- names


def test_is_image_file_by_suffix_in_any_case():
    assert all(is_image_file(f"x{s}") for s in (".png", ".JPG", ".jpeg", ".TIF", ".tiff"))
    assert is_image_file("d/x.BMP") and is_image_file("x.webp")


def test_is_image_file_rejects_dataset_side_files_and_hidden_files():
    for name in ("README.md", "MANIFEST.csv", "pairs.csv", "x.gif", "._x.png", ".x.png"):
        assert not is_image_file(name), name


# ----- quantisation


def test_uint8_values_round_trip_exactly():
    values = np.arange(256, dtype=np.uint8).reshape(16, 16, 1)
    pixels = from_uint8(values)
    assert pixels.dtype == torch.float32 and pixels.shape == (1, 16, 16)
    assert np.array_equal(to_uint8(pixels), values)


def test_every_uint16_value_round_trips_exactly():
    values = np.arange(65536, dtype=np.uint16).reshape(256, 256, 1)
    assert np.array_equal(to_uint16(from_uint16(values)), values)


def test_to_uint8_clamps_to_the_valid_range():
    pixels = torch.tensor([-0.3, 0.0, 1.0, 1.7]).view(1, 1, 4)
    assert to_uint8(pixels).ravel().tolist() == [0, 0, 255, 255]


def test_to_uint8_rounds_exact_halves_to_even():
    # float32 inputs whose float32 product with 255 is exactly k + 0.5
    candidates = ((np.arange(255) + 0.5) / 255).astype(np.float32)
    products = candidates * np.float32(255)
    halves = candidates[products == np.floor(products) + 0.5]
    assert len(halves) > 10
    result = to_uint8(torch.from_numpy(halves).view(1, 1, -1)).ravel().astype(int)
    expected = np.floor(halves * np.float32(255)).astype(int)
    expected += expected % 2  # half to even: odd floors round up, even floors stay
    assert np.array_equal(result, expected)


def test_to_uint8_matches_the_official_numpy_quantisation():
    pixels = torch.rand(3, 9, 11) * 1.2 - 0.1
    official = np.round(np.clip(pixels.permute(1, 2, 0).numpy(), 0, 1) * 255).astype(np.uint8)
    assert np.array_equal(to_uint8(pixels), official)


def test_to_uint8_rejects_nan():
    with pytest.raises(ShapeError, match="NaN"):
        to_uint8(torch.full((3, 2, 2), float("nan")))


def test_to_uint8_rejects_a_batch():
    with pytest.raises(ShapeError, match=r"\(C, H, W\)"):
        to_uint8(torch.rand(1, 3, 4, 4))


# ----- channels


def test_as_rgb_repeats_gray_and_keeps_rgb():
    gray = torch.rand(1, 4, 5)
    rgb = as_rgb(gray)
    assert rgb.shape == (3, 4, 5) and all(torch.equal(rgb[c], gray[0]) for c in range(3))
    colour = torch.rand(2, 3, 4, 5)
    assert as_rgb(colour) is colour


def test_restore_channels_gives_gray_sources_the_channel_mean(tmp_path):
    PILImage.fromarray(random_uint8(4, 5, 1)).save(tmp_path / "g.png")
    gray = read_image(tmp_path / "g.png")
    output = torch.rand(3, 4, 5)
    assert torch.allclose(restore_channels(output, gray), output.mean(0, keepdim=True))
    assert torch.equal(restore_channels(as_rgb(gray.pixels), gray), gray.pixels)
    PILImage.fromarray(random_uint8(4, 5, 3)).save(tmp_path / "c.png")
    assert restore_channels(output, read_image(tmp_path / "c.png")) is output


# ----- reading 8-bit files


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_8bit_png_reads_exact_values_and_splits_alpha(tmp_path, mode):
    channels = len(mode)
    array = random_uint8(6, 7, channels)
    PILImage.fromarray(array).save(tmp_path / "x.png")
    image = read_image(tmp_path / "x.png")
    array = array.reshape(6, 7, channels)
    colour = 1 if mode.startswith("L") else 3
    assert image.bit_depth == 8 and image.format == "PNG" and image.channels == colour
    assert np.array_equal(to_uint8(image.pixels), array[:, :, :colour])
    if "A" in mode:
        assert np.array_equal(to_uint8(image.alpha), array[:, :, -1:])
    else:
        assert image.alpha is None


def test_palette_png_becomes_rgb(tmp_path):
    array = random_uint8(5, 6, 3)
    paletted = PILImage.fromarray(array).quantize(colors=8)
    paletted.save(tmp_path / "p.png")
    image = read_image(tmp_path / "p.png")
    assert image.channels == 3 and image.alpha is None
    assert np.array_equal(to_uint8(image.pixels), np.asarray(paletted.convert("RGB")))


def test_palette_png_with_transparency_gets_alpha(tmp_path):
    paletted = PILImage.fromarray(random_uint8(5, 6, 3)).quantize(colors=8)
    paletted.save(tmp_path / "p.png", transparency=0)
    assert read_image(tmp_path / "p.png").alpha is not None


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    PILImage.new("CMYK", (8, 6), (10, 20, 30, 40)).save(tmp_path / "c.jpg", quality=95)
    image = read_image(tmp_path / "c.jpg")
    expected = np.asarray(PILImage.open(tmp_path / "c.jpg").convert("RGB"))
    assert image.channels == 3 and np.array_equal(to_uint8(image.pixels), expected)


@pytest.mark.parametrize("suffix", [".bmp", ".webp"])
def test_bmp_and_lossless_webp_read_exact_values(tmp_path, suffix):
    array = random_uint8(6, 9, 3)
    options = {"lossless": True} if suffix == ".webp" else {}
    PILImage.fromarray(array).save(tmp_path / f"x{suffix}", **options)
    image = read_image(tmp_path / f"x{suffix}")
    assert image.format == suffix[1:].upper()
    assert np.array_equal(to_uint8(image.pixels), array)


def test_jpeg_reads_the_pixels_pillow_decodes(tmp_path):
    PILImage.fromarray(random_uint8(16, 16, 3)).save(tmp_path / "x.JPG", quality=80)
    image = read_image(tmp_path / "x.JPG")
    assert image.format == "JPEG" and image.bit_depth == 8
    assert np.array_equal(to_uint8(image.pixels), np.asarray(PILImage.open(tmp_path / "x.JPG")))


# ----- orientation


def _exif_with_orientation(orientation: int) -> bytes:
    exif = PILImage.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "TestCam"  # Make, to check the rest of the block survives
    return exif.tobytes()


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_is_applied_like_pillow(tmp_path, orientation):
    PILImage.fromarray(random_uint8(5, 8, 3)).save(
        tmp_path / "o.png", exif=_exif_with_orientation(orientation)
    )
    image = read_image(tmp_path / "o.png")
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.png")))
    assert image.orientation == orientation
    assert np.array_equal(to_uint8(image.pixels), expected)


def test_jpeg_exif_orientation_is_applied_and_reset(tmp_path):
    PILImage.fromarray(random_uint8(6, 10, 3)).save(
        tmp_path / "o.jpg", exif=_exif_with_orientation(6), quality=90
    )
    image = read_image(tmp_path / "o.jpg")
    assert image.pixels.shape == (3, 10, 6)
    expected = np.asarray(ImageOps.exif_transpose(PILImage.open(tmp_path / "o.jpg")))
    assert np.array_equal(to_uint8(image.pixels), expected)
    exif = PILImage.Exif()
    exif.load(image.exif)
    assert exif[0x0112] == 1 and exif[0x010F] == "TestCam"


def test_orientation_also_applies_to_alpha(tmp_path):
    array = random_uint8(4, 7, 4)
    PILImage.fromarray(array).save(tmp_path / "o.png", exif=_exif_with_orientation(8))
    image = read_image(tmp_path / "o.png")
    assert image.alpha.shape == (1, 7, 4)
    assert np.array_equal(to_uint8(image.alpha)[:, :, 0], np.rot90(array[:, :, 3]))


# ----- 16-bit files


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_16bit_png_keeps_every_value_through_read_write_read(tmp_path, channels):
    values = every_uint16(channels)
    (tmp_path / "in.png").write_bytes(png16(values))
    first = read_image(tmp_path / "in.png")
    assert first.bit_depth == 16 and first.channels == (1 if channels < 3 else 3)
    write_image(tmp_path / "out.png", first.pixels, like=first)
    second = read_image(tmp_path / "out.png")
    assert second.bit_depth == 16
    for image in (first, second):
        colour = np.concatenate(
            [to_uint16(image.pixels)]
            + ([to_uint16(image.alpha)] if image.alpha is not None else []),
            axis=2,
        )
        assert np.array_equal(colour, values)


@pytest.mark.parametrize("filter_kind", range(5))
@pytest.mark.parametrize("channels", [2, 3, 4])
def test_16bit_colour_png_decodes_every_filter_type(tmp_path, filter_kind, channels):
    values = RNG.integers(0, 65536, (9, 11, channels), dtype=np.uint16)
    (tmp_path / "f.png").write_bytes(png16(values, filter_kind))
    image = read_image(tmp_path / "f.png")
    got = (
        np.concatenate([to_uint16(image.pixels), to_uint16(image.alpha)], axis=2)
        if (image.alpha is not None)
        else to_uint16(image.pixels)
    )
    assert np.array_equal(got, values)


def test_16bit_rgb_png_decodes_interlaced_files(tmp_path):
    values = RNG.integers(0, 65536, (13, 10, 3), dtype=np.uint16)
    (tmp_path / "i.png").write_bytes(png16(values, filter_kind=4, interlaced=True))
    assert np.array_equal(to_uint16(read_image(tmp_path / "i.png").pixels), values)


def test_written_16bit_png_is_read_by_pillow_as_its_high_bytes(tmp_path):
    values = RNG.integers(0, 65536, (7, 8, 3), dtype=np.uint16)
    write_image(tmp_path / "w.png", from_uint16(values), bit_depth=16)
    assert np.array_equal(np.asarray(PILImage.open(tmp_path / "w.png")), values >> 8)


def test_written_16bit_gray_png_is_read_exactly_by_pillow(tmp_path):
    values = RNG.integers(0, 65536, (7, 8), dtype=np.uint16)
    write_image(tmp_path / "g.png", from_uint16(values), bit_depth=16)
    assert np.array_equal(np.asarray(PILImage.open(tmp_path / "g.png")), values)


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
@pytest.mark.parametrize("options", [{}, {"compression": "zlib", "byteorder": ">"}])
def test_16bit_tiff_keeps_every_value_through_read_write_read(tmp_path, channels, options):
    tifffile = pytest.importorskip("tifffile")
    values = every_uint16(channels)
    extra = {"extrasamples": ["unassalpha"]} if channels in (2, 4) else {}
    tifffile.imwrite(
        tmp_path / "in.tif",
        values if channels > 1 else values[:, :, 0],
        photometric="rgb" if channels >= 3 else "minisblack",
        **extra,
        **options,
    )
    first = read_image(tmp_path / "in.tif")
    assert first.bit_depth == 16 and first.format == "TIFF"
    write_image(tmp_path / "out.tiff", first.pixels, like=first)
    second = read_image(tmp_path / "out.tiff")
    for image in (first, second):
        parts = [to_uint16(image.pixels)]
        if image.alpha is not None:
            parts.append(to_uint16(image.alpha))
        assert np.array_equal(np.concatenate(parts, axis=2), values)


def _colour_and_alpha(image):
    parts = [to_uint16(image.pixels)]
    if image.alpha is not None:
        parts.append(to_uint16(image.alpha))
    return np.concatenate(parts, axis=2)


@pytest.mark.parametrize(
    "layout",
    [
        {"rowsperstrip": 2},
        {"rowsperstrip": 3, "compression": "zlib"},
        {"tile": (16, 16)},
        {"planarconfig": "separate", "rowsperstrip": 8},
        {"planarconfig": "separate", "compression": "zlib"},
    ],
)
def test_16bit_rgba_tiff_in_strips_tiles_or_planes_reads_exactly(tmp_path, layout):
    tifffile = pytest.importorskip("tifffile")
    values = RNG.integers(0, 65536, (32, 32, 4), dtype=np.uint16)
    data = values.transpose(2, 0, 1).copy() if layout.get("planarconfig") else values
    tifffile.imwrite(
        tmp_path / "x.tif", data, photometric="rgb", extrasamples=["unassalpha"], **layout
    )
    assert np.array_equal(_colour_and_alpha(read_image(tmp_path / "x.tif")), values)


def test_16bit_rgb_tiff_is_read_through_pillow_without_tifffile(tmp_path, monkeypatch):
    tifffile = pytest.importorskip("tifffile")
    values = RNG.integers(0, 65536, (9, 10, 3), dtype=np.uint16)
    tifffile.imwrite(tmp_path / "x.tif", values, photometric="rgb", rowsperstrip=4)
    monkeypatch.setitem(sys.modules, "tifffile", None)  # import tifffile now fails
    assert np.array_equal(to_uint16(read_image(tmp_path / "x.tif").pixels), values)


def test_read_array_keeps_the_file_dtype(tmp_path):
    (tmp_path / "a.png").write_bytes(png16(every_uint16(3)[:4, :5]))
    PILImage.fromarray(random_uint8(4, 5, 1)).save(tmp_path / "b.png")
    assert read_array(tmp_path / "a.png").dtype == np.uint16
    gray = read_array(tmp_path / "b.png")
    assert gray.dtype == np.uint8 and gray.shape == (4, 5, 1)


def test_image_area_reads_the_header(tmp_path):
    PILImage.fromarray(random_uint8(6, 9, 3)).save(tmp_path / "a.png")
    assert image_area(tmp_path / "a.png") == 54


# ----- writing


@pytest.mark.parametrize("suffix", [".png", ".tif", ".bmp", ".webp"])
@pytest.mark.parametrize("channels", [1, 3])
def test_lossless_8bit_formats_round_trip_exactly(tmp_path, suffix, channels):
    pixels = from_uint8(random_uint8(5, 7, channels))
    write_image(tmp_path / f"x{suffix}", pixels, quality=100)
    image = read_image(tmp_path / f"x{suffix}")
    assert image.format == {".tif": "TIFF"}.get(suffix, suffix[1:].upper())
    expected = as_rgb(pixels) if suffix == ".webp" else pixels  # WebP stores colour only
    assert torch.equal(image.pixels, expected)


def test_jpeg_quality_option_controls_the_error(tmp_path):
    pixels = torch.rand(3, 32, 32)
    errors = []
    for quality in (30, 98):
        write_image(tmp_path / f"q{quality}.jpg", pixels, quality=quality)
        errors.append((read_image(tmp_path / f"q{quality}.jpg").pixels - pixels).abs().mean())
    assert errors[1] < errors[0]


def test_writing_keeps_alpha_icc_and_exif_of_like(tmp_path):
    profile = b"fake-icc-profile" * 10
    array = random_uint8(5, 6, 4)
    PILImage.fromarray(array).save(
        tmp_path / "in.png", icc_profile=profile, exif=_exif_with_orientation(1)
    )
    source = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.png", source.pixels * 0.5, like=source)
    out = read_image(tmp_path / "out.png")
    assert out.icc_profile == profile and torch.equal(out.alpha, source.alpha)
    exif = PILImage.Exif()
    exif.load(out.exif)
    assert exif[0x010F] == "TestCam"


@pytest.mark.parametrize("suffix", [".jpg", ".tif", ".webp", ".png"])
def test_icc_profile_is_written(tmp_path, suffix):
    profile = b"another-fake-profile" * 5
    write_image(tmp_path / f"x{suffix}", torch.rand(3, 4, 4), icc_profile=profile)
    assert read_image(tmp_path / f"x{suffix}").icc_profile == profile


def test_16bit_png_writes_icc_profile(tmp_path):
    write_image(tmp_path / "x.png", torch.rand(3, 4, 4), bit_depth=16, icc_profile=b"p" * 40)
    assert read_image(tmp_path / "x.png").icc_profile == b"p" * 40


def test_jpeg_drops_alpha(tmp_path):
    write_image(tmp_path / "x.jpg", torch.rand(3, 4, 4), alpha=torch.rand(1, 4, 4))
    assert read_image(tmp_path / "x.jpg").alpha is None


def test_16bit_like_written_as_jpeg_gives_8_bits(tmp_path):
    (tmp_path / "in.png").write_bytes(png16(every_uint16(3)[:8, :8]))
    source = read_image(tmp_path / "in.png")
    write_image(tmp_path / "out.jpg", source.pixels, like=source)
    assert read_image(tmp_path / "out.jpg").bit_depth == 8


def test_asking_16_bits_of_jpeg_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match="8 bits per sample"):
        write_image(tmp_path / "x.jpg", torch.rand(3, 4, 4), bit_depth=16)


def test_unknown_suffix_is_an_error(tmp_path):
    with pytest.raises(ConfigError, match=r"\.gif"):
        write_image(tmp_path / "x.gif", torch.rand(3, 4, 4))


def test_existing_file_is_not_overwritten_without_permission(tmp_path):
    target = tmp_path / "x.png"
    write_image(target, torch.zeros(3, 4, 4))
    with pytest.raises(DataError, match="overwrite=True"):
        write_image(target, torch.ones(3, 4, 4))
    write_image(target, torch.ones(3, 4, 4), overwrite=True)
    assert read_image(target).pixels.min() == 1


def test_the_input_file_is_never_overwritten(tmp_path):
    PILImage.fromarray(random_uint8(4, 4, 3)).save(tmp_path / "in.png")
    source = read_image(tmp_path / "in.png")
    with pytest.raises(DataError, match="input image"):
        write_image(tmp_path / "in.png", source.pixels, like=source, overwrite=True)


def test_writing_leaves_no_temporary_file(tmp_path):
    write_image(tmp_path / "x.png", torch.rand(3, 4, 4), bit_depth=16)
    write_image(tmp_path / "x.tif", torch.rand(1, 4, 4))
    assert sorted(path.name for path in tmp_path.iterdir()) == ["x.png", "x.tif"]


def test_write_rejects_four_channel_pixels(tmp_path):
    with pytest.raises(ShapeError, match="alpha="):
        write_image(tmp_path / "x.png", torch.rand(4, 4, 4))


# ----- bad files


def test_truncated_png_raises_data_error_naming_the_file(tmp_path):
    buffer = io.BytesIO()
    PILImage.fromarray(random_uint8(32, 32, 3)).save(buffer, format="PNG")
    (tmp_path / "cut.png").write_bytes(buffer.getvalue()[:200])
    with pytest.raises(DataError, match=r"cut\.png.*(corrupt|truncated)"):
        read_image(tmp_path / "cut.png")


def test_text_file_named_png_raises_data_error(tmp_path):
    (tmp_path / "notes.png").write_text("not an image\n")
    with pytest.raises(DataError, match=r"notes\.png"):
        read_image(tmp_path / "notes.png")


def test_empty_file_raises_data_error(tmp_path):
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.raises(DataError, match=r"empty\.jpg is empty"):
        read_image(tmp_path / "empty.jpg")


def test_missing_file_raises_data_error(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        read_image(tmp_path / "nope.png")


def test_unsupported_format_raises_data_error(tmp_path):
    PILImage.fromarray(random_uint8(4, 4, 3)).save(tmp_path / "x.gif")
    with pytest.raises(DataError, match="GIF"):
        read_image(tmp_path / "x.gif")


def test_float_tiff_is_refused(tmp_path):
    PILImage.fromarray(np.zeros((4, 4), np.float32)).save(tmp_path / "f.tif")
    with pytest.raises(DataError, match="unsupported"):
        read_image(tmp_path / "f.tif")


def test_data_error_is_a_value_error():
    assert issubclass(DataError, ValueError)


def test_paths_may_be_strings(tmp_path):
    PILImage.fromarray(random_uint8(4, 4, 3)).save(tmp_path / "s.png")
    assert read_image(str(tmp_path / "s.png")).path == Path(tmp_path / "s.png")


def test_integer_arrays_are_written_without_a_float_copy(tmp_path):
    from amsnet.data.io import read_integer_image

    rng = np.random.default_rng(0)
    for dtype, suffix in ((np.uint8, ".png"), (np.uint16, ".png"), (np.uint16, ".tif")):
        array = rng.integers(0, np.iinfo(dtype).max, (9, 7, 3), dtype=dtype)
        alpha = rng.integers(0, np.iinfo(dtype).max, (9, 7), dtype=dtype)
        path = write_image(tmp_path / f"{np.dtype(dtype).name}{suffix}", array, alpha=alpha)
        back = read_integer_image(path)
        assert back.array.dtype == dtype and np.array_equal(back.array, array)
        assert np.array_equal(back.alpha_array, alpha)


def test_integer_arrays_are_checked(tmp_path):
    with pytest.raises(ShapeError, match="uint8 or uint16"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), dtype=np.int32))
    with pytest.raises(ConfigError, match="contradicts"):
        write_image(tmp_path / "x.png", np.zeros((4, 4, 3), dtype=np.uint8), bit_depth=16)
    with pytest.raises(ShapeError, match="alpha array"):
        write_image(
            tmp_path / "x.png", np.zeros((4, 4, 3), np.uint8), alpha=np.zeros((4, 4), np.uint16)
        )


def test_one_record_holds_the_integer_pixels_and_gives_their_float_views(tmp_path):
    from amsnet.data.io import Image, read_integer_image

    array = random_uint8(6, 5, 4)
    PILImage.fromarray(array, "RGBA").save(tmp_path / "a.png")
    image = read_image(tmp_path / "a.png")
    assert isinstance(image, Image) and isinstance(read_integer_image(tmp_path / "a.png"), Image)
    assert np.array_equal(image.array, array[:, :, :3])
    assert np.array_equal(image.alpha_array, array[:, :, 3])
    assert torch.equal(image.pixels, from_uint8(array[:, :, :3]))
    assert torch.equal(image.alpha, from_uint8(array[:, :, 3]))
    assert image.pixels is image.pixels and image.rgb is image.pixels
    gray = PILImage.fromarray(array[:, :, 0])
    gray.save(tmp_path / "g.png")
    assert torch.equal(read_image(tmp_path / "g.png").rgb, as_rgb(from_uint8(array[:, :, :1])))
