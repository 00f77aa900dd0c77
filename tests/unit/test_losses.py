"""Loss terms against hand computations."""

from __future__ import annotations

import pytest
import torch

from amsnet.losses import colour_consistency, gaussian_blur, l1, masked_l1, total_variation


def test_masked_l1_is_the_mean_over_selected_elements_of_all_channels():
    prediction = torch.zeros(2, 3, 4, 4)
    target = torch.arange(96.0).view(2, 3, 4, 4)
    mask = torch.zeros(2, 1, 4, 4, dtype=torch.bool)
    mask[0, 0, 1, 2] = mask[1, 0, 3, 3] = True
    expected = torch.cat([target[0, :, 1, 2], target[1, :, 3, 3]]).mean()
    assert torch.isclose(masked_l1(prediction, target, mask), expected)


def test_masked_l1_with_nothing_selected_is_zero():
    x = torch.rand(1, 3, 4, 4)
    assert masked_l1(x, x + 1, torch.zeros(1, 1, 4, 4)) == 0


def test_masked_l1_with_full_mask_is_plain_l1():
    a, b = torch.rand(2, 3, 5, 5), torch.rand(2, 3, 5, 5)
    assert torch.isclose(masked_l1(a, b, torch.ones(2, 1, 5, 5)), l1(a, b))


def test_total_variation_by_hand():
    x = torch.tensor([[0.0, 1.0, 3.0], [2.0, 2.0, 2.0]]).view(1, 1, 2, 3)
    dy = torch.tensor([2.0, 1.0, -1.0])
    dx = torch.tensor([1.0, 2.0, 0.0, 0.0])
    assert torch.isclose(total_variation(x, "tv_l1"), dy.abs().mean() + dx.abs().mean())
    assert torch.isclose(total_variation(x, "tv_l2"), dy.square().mean() + dx.square().mean())
    iso = torch.sqrt(torch.tensor([2.0**2 + 1.0**2, 1.0**2 + 2.0**2]) + 1e-8).mean()
    assert torch.isclose(total_variation(x, "tv_isotropic"), iso)
    with pytest.raises(ValueError, match="tv_l1"):
        total_variation(x, "tv_l3")


def test_total_variation_of_a_constant_image_is_zero():
    assert total_variation(torch.full((1, 3, 6, 6), 0.4)) == 0


def test_gaussian_blur_keeps_constants_and_shape_and_smooths():
    constant = torch.full((2, 3, 9, 7), 0.25)
    assert torch.allclose(gaussian_blur(constant, 2.0), constant)
    noise = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    assert gaussian_blur(noise, 2.0).std() < noise.std() / 3


def test_colour_consistency_ignores_zero_mean_noise_but_sees_a_colour_shift():
    g = torch.Generator().manual_seed(0)
    clean = torch.full((1, 3, 64, 64), 0.5)
    noisy = clean + 0.1 * torch.randn(clean.shape, generator=g)
    shifted = clean.clone()
    shifted[:, 0] += 0.1
    assert colour_consistency(clean, noisy) < 0.01
    assert colour_consistency(shifted, noisy) > 0.025
