"""Synthetic white noise: AWGN fixed per image, and the autocorrelation of a residual."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amsnet.data.noise import add_gaussian_noise, image_seed, noise_autocorrelation
from amsnet.errors import ConfigError, ShapeError

# AWGN


def test_image_seed_is_a_fixed_function_of_seed_and_name():
    # A changed derivation would silently change every stored benchmark set.
    assert image_seed(0, "kodim01.png") == 6161169734651855660
    assert image_seed(0, "kodim01.png") != image_seed(1, "kodim01.png")
    assert image_seed(0, "kodim01.png") != image_seed(0, "kodim02.png")


def test_gaussian_noise_of_an_image_does_not_depend_on_its_batch():
    clean = torch.rand(2, 3, 8, 8)
    together = add_gaussian_noise(clean, 25, seed=7, names=["a.png", "b.png"])
    alone = add_gaussian_noise(clean[1:], 25, seed=7, names=["b.png"])
    assert torch.equal(together[1:], alone)
    assert not torch.equal(together[0] - clean[0], together[1] - clean[1])


def test_gaussian_noise_has_the_requested_standard_deviation():
    clean = torch.full((1, 3, 64, 64), 0.5)
    noise = add_gaussian_noise(clean, 25, seed=0, names=["x"]) - clean
    assert abs(float(noise.std()) * 255 - 25) < 1.0
    assert abs(float(noise.mean()) * 255) < 1.0


def test_gaussian_noise_is_not_clipped_by_default_and_clipped_on_request():
    clean = torch.full((1, 3, 16, 16), 0.02)
    assert float(add_gaussian_noise(clean, 50, seed=0).min()) < 0
    clipped = add_gaussian_noise(clean, 50, seed=0, clip=True)
    assert float(clipped.min()) == 0.0


def test_quantised_gaussian_noise_lies_on_8_bit_levels():
    noisy = add_gaussian_noise(torch.rand(1, 3, 8, 8), 15, seed=3, quantize=True)
    levels = noisy * 255
    assert torch.equal(levels, torch.round(levels))
    assert float(noisy.min()) >= 0 and float(noisy.max()) <= 1


def test_gaussian_noise_needs_one_name_per_image():
    with pytest.raises(ConfigError, match="one name per image"):
        add_gaussian_noise(torch.rand(2, 3, 4, 4), 15, seed=0, names=["only_one"])


# Autocorrelation


def test_autocorrelation_of_a_checkerboard():
    signs = torch.tensor([[1.0, -1.0], [-1.0, 1.0]]).repeat(4, 4)
    acf = noise_autocorrelation(signs.expand(1, 3, 8, 8), max_lag=2)
    assert acf[(0, 0)] == 1.0
    assert acf[(0, 1)] == -1.0 and acf[(1, 0)] == -1.0
    assert acf[(1, 1)] == 1.0 and acf[(1, -1)] == 1.0
    assert acf[(0, 2)] == 1.0 and acf[(2, 1)] == -1.0


def test_autocorrelation_of_vertical_stripes():
    stripes = torch.tensor([1.0, -1.0]).repeat(6, 3).view(1, 1, 6, 6)
    acf = noise_autocorrelation(stripes, max_lag=1)
    assert (acf[(0, 1)], acf[(1, 0)], acf[(1, 1)], acf[(1, -1)]) == (-1.0, 1.0, -1.0, -1.0)


def test_autocorrelation_matches_a_direct_numpy_computation():
    rng = np.random.default_rng(0)
    white = rng.normal(size=(2, 3, 20, 24))
    # Averaging horizontal neighbours makes the lag (0, 1) correlation 0.5 in expectation.
    noise = white[..., :-1] + white[..., 1:]
    expected = []
    for image in noise:
        for channel in image:
            centred = channel - channel.mean()
            pairs = centred[:-1, :-2] * centred[1:, 2:]  # lag (1, 2)
            expected.append(pairs.mean() / centred.var())
    acf = noise_autocorrelation(torch.from_numpy(noise), max_lag=2)
    assert acf[(1, 2)] == pytest.approx(float(np.mean(expected)), abs=1e-12)
    assert acf[(0, 1)] == pytest.approx(0.5, abs=0.1)


def test_autocorrelation_normalises_each_channel_by_its_own_variance():
    stripes = torch.tensor([1.0, -1.0]).repeat(4, 2).view(1, 1, 4, 4)
    scaled = torch.cat([stripes, 100 * stripes, torch.zeros_like(stripes)], dim=1)
    acf = noise_autocorrelation(scaled, max_lag=1)
    assert acf[(0, 1)] == -1.0  # the constant channel is left out, the scale does not matter


def test_autocorrelation_rejects_a_lag_as_large_as_the_image():
    with pytest.raises(ShapeError, match="smaller max_lag"):
        noise_autocorrelation(torch.rand(1, 3, 3, 8), max_lag=3)


def test_autocorrelation_rejects_a_constant_residual():
    with pytest.raises(ShapeError, match="constant"):
        noise_autocorrelation(torch.zeros(1, 3, 4, 4), max_lag=1)
