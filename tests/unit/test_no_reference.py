"""The no-reference quality report: each number moves the right way under a controlled change,
bad input fails clearly, and ``amsnet denoise --report`` writes its CSV."""

from __future__ import annotations

import csv
import math

import numpy as np
import pytest
import torch

import amsnet.no_reference as no_reference
from amsnet.checkpoint import save_pretrained
from amsnet.cli import main
from amsnet.data.io import from_uint8, write_image
from amsnet.errors import ConfigError, ShapeError
from amsnet.losses import gaussian_blur
from amsnet.methods import AMSNet
from amsnet.nets import create_net
from amsnet.no_reference import assess, COLUMNS, NoReferenceReport, pd_factor_for
from tests.nets_tiny import TINY


def _texture(size: int = 96, seed: int = 0) -> torch.Tensor:
    """A clean colour image with edges and fine texture, ``(3, size, size)`` in [0.2, 0.8]."""
    generator = torch.Generator().manual_seed(seed)
    rows, columns = torch.meshgrid(
        torch.arange(size, dtype=torch.float32),
        torch.arange(size, dtype=torch.float32),
        indexing="ij",
    )
    waves = torch.sin(columns / 3.0) * torch.cos(rows / 4.0) + 0.5 * torch.sin(
        (rows + columns) / 2.5
    )
    edges = ((rows // 24 + columns // 24) % 2) * 0.3
    grain = gaussian_blur(torch.rand(1, 1, size, size, generator=generator), 1.0)[0, 0]
    textured = (columns < size / 2).float()  # the right half is flat but for the edges
    image = 0.35 + textured * (0.08 * waves + 0.2 * (grain - 0.5)) + edges * 0.5
    tint = torch.tensor([1.0, 0.9, 0.8])[:, None, None]
    return (image[None] * tint).clamp(0.2, 0.8)


def _noisy(clean: torch.Tensor, sigma: float, seed: int = 1) -> torch.Tensor:
    generator = torch.Generator().manual_seed(seed)
    return clean + sigma / 255 * torch.randn(clean.shape, generator=generator)


def _checkerboard(height: int, width: int, period: int = 2) -> torch.Tensor:
    """+-1 pattern of period ``period`` in both directions, ``(height, width)``."""
    rows, columns = torch.meshgrid(torch.arange(height), torch.arange(width), indexing="ij")
    return torch.where((rows % period + columns % period) % period == 0, 1.0, -1.0)


def test_identical_images_give_zero_residual_numbers_and_no_nan():
    noisy = _noisy(_texture(), 5)
    report = assess(noisy, noisy)
    row = report.as_row()
    assert all(math.isfinite(v) for v in row.values())
    for name in ("residual_structure_gain", "residual_acf_lag1", "residual_acf_lag2"):
        assert row[name] == 0.0
    for name in COLUMNS:
        if name.startswith(("mean_shift", "lowpass_shift")):
            assert row[name] == 0.0
    assert report.checkerboard_level == 0.0
    assert report.noise_left_sigma == report.input_noise_sigma
    assert report.checkerboard_db == report.input_checkerboard_db


def test_an_injected_checkerboard_is_measured_at_its_amplitude():
    clean = _texture()
    noisy = _noisy(clean, 5)
    pattern = _checkerboard(96, 96)
    levels, peaks = [], []
    for amplitude in (0.0, 1.0, 3.0):
        report = assess(noisy, clean + amplitude / 255 * pattern)
        levels.append(report.checkerboard_level)
        peaks.append(report.checkerboard_db)
        if amplitude:
            assert report.checkerboard_level == pytest.approx(amplitude, rel=0.1)
    assert levels[0] < 0.3 < levels[1] < levels[2]
    assert peaks[0] < peaks[1] < peaks[2]
    assert "checkerboard visible" in assess(noisy, clean + 3 / 255 * pattern).warnings()
    assert "checkerboard visible" not in assess(noisy, clean).warnings()


def test_a_period_five_pattern_needs_pd_factor_five():
    clean = _texture(110)
    noisy = _noisy(clean, 3)
    denoised = clean + 2 / 255 * _checkerboard(110, 110, period=5)
    at_five = assess(noisy, denoised, pd_factor=5).checkerboard_level
    assert at_five > 1.0
    assert assess(noisy, denoised, pd_factor=2).checkerboard_level < 0.5 * at_five


def test_blur_raises_the_residual_structure_gain():
    clean = _texture()
    noisy = _noisy(clean, 4)
    gains = [assess(noisy, clean).residual_structure_gain]
    for sigma in (0.7, 1.2, 2.0):
        gains.append(assess(noisy, gaussian_blur(clean[None], sigma)[0]).residual_structure_gain)
    assert abs(gains[0]) < 0.1
    assert gains == sorted(gains)
    assert "detail removed" in assess(noisy, gaussian_blur(clean[None], 2.0)[0]).warnings()
    assert "detail removed" not in assess(noisy, clean).warnings()


def test_a_colour_offset_is_reported_in_levels():
    noisy = _noisy(_texture(), 5)
    offset = torch.tensor([3.0, 0.0, -2.0])[:, None, None] / 255
    report = assess(noisy, noisy + offset)
    shifts = (report.mean_shift_r, report.mean_shift_g, report.mean_shift_b)
    assert shifts == pytest.approx((3.0, 0.0, -2.0), abs=1e-3)
    local = (report.lowpass_shift_r, report.lowpass_shift_g, report.lowpass_shift_b)
    assert local == pytest.approx((3.0, 0.0, 2.0), abs=1e-3)
    assert "colour shift" in report.warnings()


def test_leftover_noise_of_known_sigma_is_estimated_on_a_flat_image():
    flat = torch.full((3, 128, 128), 0.5)
    report = assess(_noisy(flat, 4.0, seed=2), _noisy(flat, 1.5, seed=3))
    assert report.input_noise_sigma == pytest.approx(4.0, rel=0.1)
    assert report.noise_left_sigma == pytest.approx(1.5, rel=0.1)
    assert "noise left" not in report.warnings()
    assert "noise left" in assess(_noisy(flat, 4.0, seed=2), _noisy(flat, 3.5, seed=3)).warnings()


def test_integer_arrays_give_the_same_report_as_float_tensors():
    rng = np.random.default_rng(0)
    noisy = rng.integers(40, 200, (64, 72, 3), dtype=np.uint8)
    denoised = np.clip(noisy.astype(int) + 2, 0, 255).astype(np.uint8)
    from_arrays = assess(noisy, denoised)
    from_tensors = assess(from_uint8(noisy), from_uint8(denoised)).as_row()
    assert from_arrays.as_row() == pytest.approx(from_tensors, abs=1e-5)
    assert from_arrays.mean_shift_g == pytest.approx(2.0, abs=1e-6)
    deep = denoised.astype(np.uint16) * 257  # a 16-bit output of an 8-bit input
    assert assess(noisy, deep).mean_shift_g == pytest.approx(2.0, abs=1e-3)
    gray = assess(noisy[:, :, 0], denoised[:, :, :1])
    assert gray.mean_shift_r == gray.mean_shift_g == gray.mean_shift_b


def test_large_images_are_measured_on_a_sample(monkeypatch):
    monkeypatch.setattr(no_reference, "SAMPLE_PIXELS", 128 * 128)
    ramp = torch.linspace(0.3, 0.7, 300)
    clean = (ramp[None, :, None] + 0.2 * ramp[None, None, :]).expand(3, 300, 300) / 1.2
    noisy = _noisy(clean, 5)
    report = assess(noisy, clean + 2 / 255 * _checkerboard(300, 300))
    assert report.measured_megapixels <= 128 * 128 / 1e6
    assert report.input_noise_sigma == pytest.approx(5.0, rel=0.15)
    assert report.checkerboard_level == pytest.approx(2.0, rel=0.15)
    assert report.mean_shift_r == pytest.approx(float((clean - noisy)[0].mean() * 255), abs=1e-3)


@pytest.mark.parametrize(
    ("noisy", "denoised", "error", "words"),
    [
        (torch.rand(3, 64, 64), torch.rand(3, 64, 60), ShapeError, "differ in size"),
        (torch.rand(3, 64, 64), torch.rand(1, 64, 64), ShapeError, "differ in size"),
        (torch.rand(3, 20, 64), torch.rand(3, 20, 64), ShapeError, "at least 32x32"),
        (torch.rand(1, 3, 64, 64), torch.rand(1, 3, 64, 64), ShapeError, "(C, H, W)"),
        (torch.rand(4, 64, 64), torch.rand(4, 64, 64), ShapeError, "1 or 3 channels"),
        (np.zeros((64, 64, 3), np.int64), torch.rand(3, 64, 64), ShapeError, "uint8 or uint16"),
        (torch.rand(3, 64, 64), torch.full((3, 64, 64), math.nan), ShapeError, "NaN"),
    ],
)
def test_bad_inputs_are_clear_errors(noisy, denoised, error, words):
    with pytest.raises(error, match=words.replace("(", r"\(").replace(")", r"\)")):
        assess(noisy, denoised)


def test_pd_factor_is_checked_and_read_from_the_method():
    with pytest.raises(ConfigError, match="pd_factor"):
        assess(torch.rand(3, 64, 64), torch.rand(3, 64, 64), pd_factor=1)
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]), pd_factor_eval=3)
    assert pd_factor_for(method) == 3
    assert pd_factor_for(torch.nn.Identity()) == no_reference.DEFAULT_PD_FACTOR


def test_row_columns_and_summary():
    report = assess(torch.rand(3, 64, 64), torch.rand(3, 64, 64))
    assert tuple(report.as_row()) == COLUMNS == tuple(NoReferenceReport.__dataclass_fields__)
    line = report.summary()
    assert "\n" not in line and "noise sigma" in line
    assert ("no warnings" in line) == (not report.warnings())


@pytest.fixture
def weights(tmp_path):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    return save_pretrained(method, tmp_path / "model.safetensors")


def test_denoise_report_writes_one_row_per_denoised_file(tmp_path, weights, capsys):
    photos = tmp_path / "in"
    write_image(photos / "a.png", _noisy(_texture(64), 5).clamp(0, 1))
    write_image(photos / "sub" / "b.png", _noisy(_texture(48, seed=3), 8).clamp(0, 1))
    write_image(photos / "tiny.png", torch.rand(3, 16, 16))  # denoised, too small to measure
    (photos / "broken.png").write_bytes(b"not an image")
    out = tmp_path / "out"
    args = ["denoise", str(photos), "-o", str(out), "--weights", str(weights), "--report"]
    assert main(args) == 1  # the broken file failed; the others went on
    printed = capsys.readouterr().out
    assert printed.count("quality: noise sigma") == 2 and "quality: not measured" in printed
    with (out / "quality_report.csv").open() as handle:
        reader = csv.DictReader(handle)
        assert reader.fieldnames == ["source", "output", *COLUMNS]
        rows = list(reader)
    assert sorted(row["output"] for row in rows) == [str(out / "a.png"), str(out / "sub" / "b.png")]
    assert all(math.isfinite(float(row["noise_left_sigma"])) for row in rows)
    assert (out / "tiny.png").is_file()

    # An existing report is refused before any work starts; --overwrite replaces it.
    (out / "a.png").unlink()
    assert main(args) == 1
    assert "--report" in capsys.readouterr().err and not (out / "a.png").exists()
    assert main([*args, "--overwrite"]) == 1
    with (out / "quality_report.csv").open() as handle:
        assert len(list(csv.DictReader(handle))) == 2


def test_denoise_without_report_writes_none(tmp_path, weights):
    photos = tmp_path / "in"
    write_image(photos / "a.png", torch.rand(3, 40, 40))
    out = tmp_path / "out"
    assert main(["denoise", str(photos), "-o", str(out), "--weights", str(weights)]) == 0
    assert not (out / "quality_report.csv").exists()
