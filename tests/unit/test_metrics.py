"""PSNR/SSIM: equality with scikit-image and with an independent MATLAB-style SSIM, rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage
from skimage import data
from skimage.metrics import peak_signal_noise_ratio, structural_similarity

from amsnet.errors import ConfigError, ShapeError
from amsnet.metrics import psnr, quantize, ssim, SSIM_CONVENTIONS


def _astronaut_pair(top: int, left: int, size: int = 48) -> tuple[np.ndarray, np.ndarray]:
    """A natural clean crop and a noisy version, float32 HWC; the noisy one leaves [0, 1]."""
    clean = data.astronaut()[top : top + size, left : left + size].astype(np.float32) / 255
    noise = np.random.default_rng(top * 1000 + left).normal(0.0, 0.08, clean.shape)
    return (clean + noise).astype(np.float32), clean


def _random_pair(seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    clean = rng.random((37, 41, 3), dtype=np.float32)
    noisy = (clean + rng.normal(0.0, 0.1, clean.shape)).astype(np.float32)
    return noisy, clean


PAIRS = {
    "astronaut_face": _astronaut_pair(60, 180),
    "astronaut_suit": _astronaut_pair(300, 100),
    "random": _random_pair(3),
}


def _bchw(*images: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2)


def _uint8(image: np.ndarray) -> np.ndarray:
    """The official ``tensor2img`` conversion, written with numpy on the float32 array."""
    return np.round(np.clip(image, 0, 1) * np.float32(255.0)).astype(np.uint8)


def _matlab_ssim_reference(first: np.ndarray, second: np.ndarray) -> float:
    """Wang et al.'s SSIM as in the AMSNet code, per channel with a full 2-D Gaussian window."""
    radius = 5
    grid_y, grid_x = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    window = np.exp(-(grid_y**2 + grid_x**2) / (2 * 1.5**2))
    window /= window.sum()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    values = []
    for channel in range(first.shape[-1]):
        x = first[..., channel].astype(np.float64)
        y = second[..., channel].astype(np.float64)

        def local(image: np.ndarray) -> np.ndarray:
            return ndimage.correlate(image, window, mode="reflect")[radius:-radius, radius:-radius]

        mu_x, mu_y = local(x), local(y)
        var_x = local(x * x) - mu_x**2
        var_y = local(y * y) - mu_y**2
        cov = local(x * y) - mu_x * mu_y
        ssim_map = ((2 * mu_x * mu_y + c1) * (2 * cov + c2)) / (
            (mu_x**2 + mu_y**2 + c1) * (var_x + var_y + c2)
        )
        values.append(ssim_map.mean())
    return float(np.mean(values))


def test_quantize_equals_numpy_round_of_clipped_float32_times_255():
    rng = np.random.default_rng(0)
    values = rng.uniform(-0.2, 1.2, 5000).astype(np.float32)
    # Values whose float32 product with 255 lands exactly on a .5 step exercise the tie rule.
    candidates = ((np.arange(255) + 0.5) / 255).astype(np.float32)
    ties = candidates[(candidates * np.float32(255)) % 1 == 0.5]
    assert ties.size > 10
    values = np.concatenate([values, ties])
    expected = np.round(np.clip(values, 0, 1) * np.float32(255.0))
    got = quantize(torch.from_numpy(values))
    assert got.dtype == torch.float64
    np.testing.assert_array_equal(got.numpy(), expected)


def test_quantize_rounds_exact_halves_to_even_and_clips():
    values = torch.tensor([0.5, 1.5, 2.5, 3.5, 253.5, 254.5, -3.0, 300.0], dtype=torch.float64)
    got = quantize(values, data_range=255.0, dtype=torch.uint8)
    assert got.dtype == torch.uint8
    assert got.tolist() == [0, 2, 2, 4, 254, 254, 0, 255]


def test_quantize_rejects_integer_input():
    with pytest.raises(ShapeError, match="floating-point"):
        quantize(torch.zeros(3, dtype=torch.uint8))


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_quantised_psnr_equals_skimage_on_uint8_images(pair):
    noisy, clean = PAIRS[pair]
    expected = peak_signal_noise_ratio(_uint8(clean), _uint8(noisy), data_range=255)
    got = psnr(_bchw(noisy), _bchw(clean))
    assert got.dtype == torch.float64 and got.shape == (1,)
    assert abs(float(got[0]) - expected) < 1e-6


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_float_psnr_equals_skimage_on_clipped_float_images(pair):
    noisy, clean = PAIRS[pair]
    expected = peak_signal_noise_ratio(
        np.clip(clean, 0, 1).astype(np.float64),
        np.clip(noisy, 0, 1).astype(np.float64),
        data_range=1.0,
    )
    got = psnr(_bchw(noisy), _bchw(clean), quantize=False)
    assert abs(float(got[0]) - expected) < 1e-6


def test_psnr_of_uint8_tensors_equals_the_quantised_float_route():
    noisy, clean = PAIRS["astronaut_face"]
    from_uint8 = psnr(_bchw(_uint8(noisy)), _bchw(_uint8(clean)))
    assert torch.equal(from_uint8, psnr(_bchw(noisy), _bchw(clean)))


def test_psnr_scales_with_data_range():
    noisy, clean = PAIRS["random"]
    unit = psnr(_bchw(noisy), _bchw(clean), quantize=False)
    scaled = psnr(
        _bchw(noisy).double() * 255, _bchw(clean).double() * 255, data_range=255.0, quantize=False
    )
    assert torch.allclose(unit, scaled, rtol=0, atol=1e-9)


def test_psnr_of_identical_images_is_infinite():
    image = torch.rand(2, 3, 8, 8)
    assert torch.isinf(psnr(image, image)).all()


def test_psnr_is_per_image_in_a_batch(device):
    pairs = [PAIRS[name] for name in sorted(PAIRS) if name != "random"]
    noisy = _bchw(*(p[0] for p in pairs)).to(device)
    clean = _bchw(*(p[1] for p in pairs)).to(device)
    batched = psnr(noisy, clean).cpu()
    single = torch.cat([psnr(noisy[i : i + 1], clean[i : i + 1]).cpu() for i in range(2)])
    assert torch.equal(batched, single)
    assert batched[0] != batched[1]


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_skimage_ssim_equals_skimage_on_uint8_images(pair):
    noisy, clean = PAIRS[pair]
    expected = structural_similarity(_uint8(noisy), _uint8(clean), channel_axis=-1, data_range=255)
    got = ssim(_bchw(noisy), _bchw(clean), convention="skimage")
    assert abs(float(got[0]) - expected) < 1e-4


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_skimage_ssim_equals_skimage_on_float_images(pair):
    noisy, clean = PAIRS[pair]
    expected = structural_similarity(
        np.clip(noisy, 0, 1).astype(np.float64) * 255,
        np.clip(clean, 0, 1).astype(np.float64) * 255,
        channel_axis=-1,
        data_range=255,
    )
    got = ssim(_bchw(noisy), _bchw(clean), convention="skimage", quantize=False)
    assert abs(float(got[0]) - expected) < 1e-4


@pytest.mark.parametrize("pair", sorted(PAIRS))
def test_matlab_ssim_equals_the_independent_reference_on_uint8_values(pair):
    noisy, clean = PAIRS[pair]
    expected = _matlab_ssim_reference(_uint8(noisy), _uint8(clean))
    got = ssim(_bchw(noisy), _bchw(clean), convention="matlab")
    assert abs(float(got[0]) - expected) < 1e-6


def test_matlab_ssim_equals_the_independent_reference_on_float_values():
    noisy, clean = PAIRS["astronaut_suit"]
    expected = _matlab_ssim_reference(
        np.clip(noisy, 0, 1).astype(np.float64) * 255, np.clip(clean, 0, 1).astype(np.float64) * 255
    )
    got = ssim(_bchw(noisy), _bchw(clean), convention="matlab", quantize=False)
    assert abs(float(got[0]) - expected) < 1e-6


def test_the_two_ssim_conventions_differ():
    noisy, clean = PAIRS["astronaut_face"]
    matlab = ssim(_bchw(noisy), _bchw(clean), convention="matlab")
    skimage_like = ssim(_bchw(noisy), _bchw(clean), convention="skimage")
    assert abs(float(matlab[0]) - float(skimage_like[0])) > 1e-3


@pytest.mark.parametrize("convention", SSIM_CONVENTIONS)
def test_ssim_of_identical_images_is_one(convention, device):
    image = torch.rand(2, 3, 16, 20, device=device)
    assert torch.allclose(
        ssim(image, image, convention=convention).cpu(), torch.ones(2, dtype=torch.float64)
    )


@pytest.mark.parametrize("convention", SSIM_CONVENTIONS)
def test_ssim_is_per_image_in_a_batch(convention):
    noisy = _bchw(PAIRS["astronaut_face"][0], PAIRS["astronaut_suit"][0])
    clean = _bchw(PAIRS["astronaut_face"][1], PAIRS["astronaut_suit"][1])
    batched = ssim(noisy, clean, convention=convention)
    single = torch.cat(
        [ssim(noisy[i : i + 1], clean[i : i + 1], convention=convention) for i in range(2)]
    )
    assert torch.allclose(batched, single, rtol=0, atol=1e-12)


def test_ssim_rejects_an_unknown_convention():
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(ConfigError, match="matlab"):
        ssim(image, image, convention="gaussian")


def test_ssim_rejects_images_smaller_than_the_window():
    image = torch.rand(1, 3, 10, 16)
    with pytest.raises(ShapeError, match="11x11"):
        ssim(image, image, convention="matlab")


def test_metrics_reject_a_shape_mismatch():
    with pytest.raises(ShapeError, match="differ in shape"):
        psnr(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 9))


def test_metrics_reject_images_without_a_batch_dimension():
    with pytest.raises(ShapeError, match="unsqueeze"):
        psnr(torch.rand(3, 8, 8), torch.rand(3, 8, 8))
