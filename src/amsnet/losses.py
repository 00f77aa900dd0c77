"""Loss terms: how an error is reduced. *Which* pixels enter a loss is the methods' business.

All functions take ``(..., C, H, W)`` float tensors in ``[0, 1]`` and return a scalar.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

from amsnet.ops.padding import pad

SmoothnessPrior = Literal["tv_l1", "tv_l2", "tv_isotropic"]
SMOOTHNESS_PRIORS: tuple[str, ...] = ("tv_l1", "tv_l2", "tv_isotropic")


def masked_l1(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over the elements selected by ``mask`` (the paper's L_m, Eq. 1).

    The mean is taken over the selected elements only (as the official ``FirstPdMaskLoss``),
    not over the whole image, so the loss scale does not depend on the mask ratio.

    Args:
        prediction: ``(N, C, H, W)``.
        target: same shape (or broadcastable to it).
        mask: ``(N, 1, H, W)`` or ``(N, C, H, W)`` booleans or 0/1 weights; a singleton
            channel dimension selects all channels of a pixel.

    Returns:
        Scalar tensor (0 when nothing is selected).
    """
    error = (prediction - target).abs() * mask
    selected = mask.sum() * (error.numel() // mask.numel())
    return error.sum() / selected.clamp_min(1)


def l1(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Mean absolute error over all elements."""
    return (prediction - target).abs().mean()


def total_variation(x: torch.Tensor, kind: SmoothnessPrior = "tv_l1") -> torch.Tensor:
    """Total variation of ``x``, the smoothness prior L_p of AMSNet-P.

    The main paper's exact prior is unconfirmed (see ``docs/concepts.md``); the default is the
    anisotropic L1 total variation, the only one-argument smoothness prior in the official code
    (``TVLoss``, without its extra division by the batch size).

    Args:
        x: ``(N, C, H, W)``.
        kind: ``"tv_l1"`` mean |dy| + mean |dx| (anisotropic); ``"tv_l2"`` mean dy^2 + mean
            dx^2; ``"tv_isotropic"`` mean sqrt(dy^2 + dx^2 + 1e-8) over the common region.

    Returns:
        Scalar tensor.
    """
    dy = x[..., 1:, :] - x[..., :-1, :]
    dx = x[..., :, 1:] - x[..., :, :-1]
    if kind == "tv_l1":
        return dy.abs().mean() + dx.abs().mean()
    if kind == "tv_l2":
        return dy.square().mean() + dx.square().mean()
    if kind == "tv_isotropic":
        return (dy[..., :, :-1].square() + dx[..., :-1, :].square() + 1e-8).sqrt().mean()
    raise ValueError(f"unknown smoothness prior {kind!r}; choose one of {SMOOTHNESS_PRIORS}")


def gaussian_blur(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian low-pass filter (radius 3 sigma, reflect padding), shape kept."""
    radius = max(1, round(3 * sigma))
    taps = torch.arange(-radius, radius + 1, device=x.device, dtype=x.dtype)
    kernel = torch.exp(-0.5 * (taps / sigma) ** 2)
    kernel = kernel / kernel.sum()
    c = x.shape[-3]
    flat = x.reshape(-1, c, *x.shape[-2:])
    flat = pad(flat, (radius, radius, radius, radius), "reflect")
    flat = F.conv2d(flat, kernel.view(1, 1, 1, -1).expand(c, 1, 1, -1), groups=c)
    flat = F.conv2d(flat, kernel.view(1, 1, -1, 1).expand(c, 1, -1, 1), groups=c)
    return flat.reshape(x.shape)


def colour_consistency(
    prediction: torch.Tensor, reference: torch.Tensor, sigma: float = 3.0
) -> torch.Tensor:
    """L1 between low-pass filtered prediction and reference: penalises colour shifts only.

    Noise is mostly high-frequency, so after a Gaussian blur of scale ``sigma`` the noisy
    input is a fair estimate of the local mean colour; a denoiser that shifts colours (the
    limitation named in supplement section 1.9) pays for it, while removing noise costs little.
    """
    return l1(gaussian_blur(prediction, sigma), gaussian_blur(reference, sigma))
