"""Camera-like noise by unprocessing: determinism, exactness, correlation, levels, JPEG."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch
from skimage import data

from amsnet.data.bayer import BAYER_PATTERNS, DEMOSAIC_METHODS
from amsnet.data.camera_noise import camera_noise, ISO_LIKE_LEVELS, SHOT_NOISE_RANGE
from amsnet.data.noise import add_gaussian_noise, noise_autocorrelation
from amsnet.errors import ConfigError, ShapeError
from amsnet.metrics import psnr


def _astronaut(top: int, left: int, size: int) -> torch.Tensor:
    crop = data.astronaut()[top : top + size, left : left + size]
    return torch.from_numpy(crop.copy()).permute(2, 0, 1)[None].float() / 255


def _inverse_smoothstep(y: float) -> float:
    return 0.5 - math.sin(math.asin(1.0 - 2.0 * y) / 3.0)


# Camera noise


def test_camera_noise_is_deterministic_for_a_seed():
    clean = _astronaut(200, 300, 32)
    first = camera_noise(clean, seed=11, iso_like_level="high")
    second = camera_noise(clean, seed=11, iso_like_level="high")
    other = camera_noise(clean, seed=12, iso_like_level="high")
    assert torch.equal(first[0], second[0]) and torch.equal(first[1], second[1])
    assert first[2] == second[2]
    assert not torch.equal(first[0], other[0])


def test_a_seed_is_a_cpu_generator_with_that_seed():
    clean = _astronaut(200, 300, 16)
    from_seed = camera_noise(clean, seed=5)
    from_generator = camera_noise(clean, generator=torch.Generator().manual_seed(5))
    assert torch.equal(from_seed[0], from_generator[0])


def test_zero_noise_levels_give_noisy_equal_to_the_clean_target():
    noisy, target, _ = camera_noise(_astronaut(0, 0, 32), seed=0, shot_noise=0.0, read_noise=0.0)
    assert torch.equal(noisy, target)


@pytest.mark.parametrize("demosaic", DEMOSAIC_METHODS)
@pytest.mark.parametrize("pattern", BAYER_PATTERNS)
def test_full_inverse_returns_flat_colours_exactly(demosaic, pattern):
    # Demosaicking is exact on flat colours, so only the colour pipeline is tested here.
    colours = torch.tensor([[0.2, 0.5, 0.7], [0.05, 0.3, 0.1], [0.6, 0.55, 0.4]])
    clean = colours.view(3, 3, 1, 1).expand(3, 3, 6, 8).contiguous()
    _, target, _ = camera_noise(
        clean, seed=2, shot_noise=0.0, read_noise=0.0, demosaic=demosaic, bayer_pattern=pattern
    )
    assert torch.allclose(target, clean, atol=1e-5)


def test_without_full_inverse_the_target_lacks_gain_and_tone_curve():
    clean = torch.tensor([0.3, 0.4, 0.5]).view(1, 3, 1, 1).expand(1, 3, 4, 4)
    _, target, params = camera_noise(
        clean, seed=4, shot_noise=0.0, read_noise=0.0, full_inverse=False
    )
    gain = params[0].brightness_gain
    expected = [(_inverse_smoothstep(v) ** 2.2 / gain) ** (1 / 2.2) for v in (0.3, 0.4, 0.5)]
    assert torch.allclose(target[0, :, 0, 0], torch.tensor(expected), atol=1e-5)


def test_full_inverse_round_trip_on_a_natural_image_loses_only_demosaicking_detail():
    # Observed on this crop over seeds 0-9: bilinear >= 31.8 dB, Malvar >= 35.8 dB (the colour
    # pipeline alone is exact to ~70 dB; the loss is the mosaic/demosaic round trip).
    clean = _astronaut(200, 300, 96)
    values = {}
    for demosaic in DEMOSAIC_METHODS:
        _, target, _ = camera_noise(
            clean, seed=0, shot_noise=0.0, read_noise=0.0, demosaic=demosaic
        )
        values[demosaic] = float(psnr(target, clean)[0])
    assert values["bilinear"] > 30.0
    assert values["malvar"] > values["bilinear"] + 2.0


def test_camera_noise_is_correlated_and_awgn_is_not():
    clean = _astronaut(100, 100, 128)
    noisy, target, _ = camera_noise(clean, seed=0, iso_like_level="medium")
    camera = noise_autocorrelation(noisy - target, max_lag=1)
    white = noise_autocorrelation(add_gaussian_noise(clean, 15, seed=0) - clean, max_lag=1)
    assert camera[(0, 1)] > 0.3 and camera[(1, 0)] > 0.3
    assert abs(white[(0, 1)]) < 0.05 and abs(white[(1, 0)]) < 0.05


def test_noise_grows_with_the_named_level():
    clean = _astronaut(100, 100, 64)
    spread = []
    for level in ("low", "medium", "high"):
        noisy, target, _ = camera_noise(clean, seed=1, iso_like_level=level)
        spread.append(float((noisy - target).std()))
    assert spread[0] < spread[1] < spread[2]


def test_drawn_parameters_follow_brooks_distributions():
    _, _, params = camera_noise(torch.rand(256, 3, 2, 2), seed=0)
    shot = np.array([p.shot_noise for p in params])
    read = np.array([p.read_noise for p in params])
    assert SHOT_NOISE_RANGE[0] <= shot.min() and shot.max() <= SHOT_NOISE_RANGE[1]
    residual = np.log(read) - (2.18 * np.log(shot) + 1.20)
    assert abs(residual.mean()) < 0.06 and 0.2 < residual.std() < 0.32
    assert all(1.9 <= p.red_gain <= 2.4 and 1.5 <= p.blue_gain <= 1.9 for p in params)
    rows = np.array([p.rgb_to_camera for p in params]).sum(axis=2)
    np.testing.assert_allclose(rows, 1.0, atol=1e-12)


def test_named_levels_set_shot_noise_and_read_noise_from_the_line():
    _, _, params = camera_noise(torch.rand(2, 3, 4, 4), seed=0, iso_like_level="low")
    shot = ISO_LIKE_LEVELS["low"]
    assert all(p.shot_noise == shot and p.level == "low" for p in params)
    assert params[0].read_noise == pytest.approx(math.exp(2.18 * math.log(shot) + 1.20))


def test_given_levels_are_used_and_recorded_as_given():
    _, _, params = camera_noise(torch.rand(1, 3, 4, 4), seed=0, shot_noise=0.002, read_noise=1e-5)
    assert (params[0].shot_noise, params[0].read_noise) == (0.002, 1e-5)
    assert params[0].sources == {"shot_noise": "given", "read_noise": "given"}


def test_parameters_are_json_serialisable():
    _, _, params = camera_noise(torch.rand(1, 3, 4, 4), seed=9, jpeg_quality=75)
    record = json.loads(json.dumps(params[0].to_dict()))
    assert record["seed"] == 9 and record["jpeg_quality"] == 75
    assert len(record["ccm_weights"]) == 4 and len(record["rgb_to_camera"]) == 3
    assert set(record["sources"]) == {"shot_noise", "read_noise"}


def test_odd_sizes_keep_their_shape():
    noisy, target, _ = camera_noise(torch.rand(2, 3, 7, 9), seed=0)
    assert noisy.shape == target.shape == (2, 3, 7, 9)
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1


def test_jpeg_compresses_the_noisy_image_only():
    clean = _astronaut(100, 100, 32)
    plain = camera_noise(clean, seed=0, iso_like_level="medium")
    compressed = camera_noise(clean, seed=0, iso_like_level="medium", jpeg_quality=75)
    assert torch.equal(plain[1], compressed[1])
    assert not torch.equal(plain[0], compressed[0])
    levels = compressed[0] * 255
    assert torch.allclose(levels, torch.round(levels), atol=1e-4)


def test_jpeg_target_compresses_the_target_with_the_same_quality():
    clean = _astronaut(100, 100, 32)
    plain = camera_noise(clean, seed=0, shot_noise=0.0, read_noise=0.0)
    both = camera_noise(
        clean, seed=0, shot_noise=0.0, read_noise=0.0, jpeg_quality=75, jpeg_target=True
    )
    # Without noise the two compressed images are the same JPEG of the same 8-bit image.
    assert torch.equal(both[0], both[1])
    assert not torch.equal(both[1], plain[1])
    assert both[2][0].jpeg_target


def test_camera_noise_from_a_seed_is_the_same_on_any_device(device):
    clean = _astronaut(100, 100, 32)
    on_cpu = camera_noise(clean, seed=3)[0]
    on_device = camera_noise(clean.to(device), seed=3)[0]
    assert on_device.device.type == device.type
    assert torch.allclose(on_device.cpu(), on_cpu, atol=1e-5)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({}, "exactly one"),
        ({"seed": 0, "generator": torch.Generator()}, "exactly one"),
        ({"seed": 0, "iso_like_level": "extreme"}, "low"),
        ({"seed": 0, "iso_like_level": "low", "shot_noise": 0.01}, "not both"),
        ({"seed": 0, "shot_noise": -1.0}, ">= 0"),
        ({"seed": 0, "jpeg_quality": 0}, "1..100"),
        ({"seed": 0, "jpeg_target": True}, "needs a jpeg_quality"),
        ({"seed": 0, "bayer_pattern": "rgbg"}, "rggb"),
        ({"seed": 0, "demosaic": "ahd"}, "malvar"),
    ],
)
def test_camera_noise_rejects_bad_settings(kwargs, message):
    with pytest.raises(ConfigError, match=message):
        camera_noise(torch.rand(1, 3, 4, 4), **kwargs)


def test_camera_noise_needs_rgb_images():
    with pytest.raises(ShapeError, match="RGB"):
        camera_noise(torch.rand(1, 1, 4, 4), seed=0)
