"""Denoising strength: how much of the estimated noise is taken away.

A denoiser trained on one kind of noise removes too much from an image whose noise is weaker or
finer than that (a photo shrunk for the web, a low-ISO frame, synthetic noise): it takes fine
detail for noise (docs/models.md, "Known problems"). Putting part of the removed residual back,
``noisy + s * (denoised - noisy)``, trades noise for detail with one number, the control a
photographer knows from other denoisers. ``s = 1`` is the model's output; ``s = 0`` the input.
"""

from __future__ import annotations

import math

import torch

from amsnet.errors import ConfigError


def check_strength(strength: float, what: str = "strength") -> float:
    """``strength`` as a float if it lies in ``[0, 1]``, else a ConfigError naming ``what``
    (the flag or argument)."""
    if isinstance(strength, bool) or not isinstance(strength, int | float):
        raise ConfigError(f"{what} must be a number from 0 to 1, got {strength!r}")
    value = float(strength)
    if not (math.isfinite(value) and 0.0 <= value <= 1.0):
        raise ConfigError(
            f"{what} must lie in 0..1 (1: the model's full output, 0.5: half the removed "
            f"noise put back), got {strength!r}"
        )
    return value


def apply_strength(denoised: torch.Tensor, noisy: torch.Tensor, strength: float) -> torch.Tensor:
    """``noisy + strength * (denoised - noisy)``.

    Args:
        denoised: the model's output, any shape, float.
        noisy: its input, the same shape.
        strength: in ``[0, 1]`` (see :func:`check_strength`).

    Returns:
        ``denoised`` itself when ``strength`` is 1, else a new tensor of its shape.
    """
    if strength == 1.0:
        return denoised
    return torch.lerp(noisy.to(denoised), denoised, strength)
