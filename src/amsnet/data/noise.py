"""Synthetic white noise with exact ground truth, and the statistic that tells noise apart.

* :func:`add_gaussian_noise`: additive white Gaussian noise with ``sigma`` on the 0-255 scale,
  the AWGN protocol of CBSD68/Kodak24/McMaster. The noise of an image is a pure function of
  ``(seed, image name)`` (:func:`image_seed`), so a test set is the same in every run and every
  epoch.
* :func:`noise_autocorrelation`: the normalised spatial autocorrelation of a noise residual,
  the statistic used to compare synthetic noise with real noise (PolyU, CC15): about 0 at every
  non-zero lag for AWGN, clearly positive at lag 1 for real camera noise.

Realistic, spatially correlated camera noise is in :mod:`amsnet.data.camera_noise`.

Images are float ``(B, C, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence

import torch

from amsnet.errors import ConfigError, ShapeError
from amsnet.ops.checks import check_bchw


def image_seed(seed: int, name: str) -> int:
    """A stable 63-bit seed for one image, derived from a set seed and the image's name.

    Uses SHA-256 (Python's ``hash`` changes between runs), so the same ``(seed, name)`` gives
    the same noise on every machine and in every run.

    Example:
        >>> image_seed(0, "kodim01.png") == image_seed(0, "kodim01.png")
        True
    """
    digest = hashlib.sha256(f"{int(seed)}\x00{name}".encode()).digest()
    return int.from_bytes(digest[:8], "little") & (2**63 - 1)


def add_gaussian_noise(
    clean: torch.Tensor,
    sigma: float,
    *,
    seed: int,
    names: Sequence[str] | None = None,
    clip: bool = False,
    quantize: bool = False,
) -> torch.Tensor:
    """Add white Gaussian noise of standard deviation ``sigma / 255``, drawn once per image.

    The noise of image ``i`` comes from a CPU generator seeded with
    ``image_seed(seed, names[i])``: it does not depend on the batch the image is in, on the
    device or on the epoch. A data set that calls this in ``__getitem__`` therefore serves the
    same noisy image every epoch.

    Clipping: the default keeps the float values unclipped (the noisy image can leave
    ``[0, 1]``), which is the usual DnCNN/FFDNet practice for AWGN benchmarks; whether the
    AMSNet supplement clipped or quantised its CBSD68 inputs is not stated. ``clip=True`` clamps
    to ``[0, 1]``; ``quantize=True`` clamps and rounds to 8-bit levels (half to even), like
    saving the noisy image as a PNG.

    Args:
        clean: clean images ``(B, C, H, W)``, float in ``[0, 1]``.
        sigma: noise standard deviation on the 0-255 scale (15, 25, 50 are the usual values).
        seed: the set's seed.
        names: one name per image (e.g. file names); default: the batch positions ``"0"``,
            ``"1"``, ..., which makes the noise depend on the batch order.
        clip: clamp the noisy image to ``[0, 1]``.
        quantize: clamp and round the noisy image to multiples of ``1 / 255``.

    Returns:
        Noisy images, same shape, dtype and device as ``clean``.

    Example:
        >>> clean = torch.full((1, 3, 4, 4), 0.5)
        >>> a = add_gaussian_noise(clean, 25, seed=0, names=["img"])
        >>> torch.equal(a, add_gaussian_noise(clean, 25, seed=0, names=["img"]))
        True
    """
    check_bchw(clean, "clean")
    if not (math.isfinite(sigma) and sigma >= 0):
        raise ConfigError(f"sigma must be a finite number >= 0 (0-255 scale), got {sigma}")
    batch = clean.shape[0]
    if names is None:
        names = [str(index) for index in range(batch)]
    if isinstance(names, str) or len(names) != batch:
        raise ConfigError(
            f"names must give one name per image ({batch}), got {names!r}; pass a list of "
            "file names"
        )
    draws = [
        torch.randn(
            clean.shape[1:],
            generator=torch.Generator().manual_seed(image_seed(seed, str(name))),
            dtype=torch.float32,
        )
        for name in names
    ]
    noise = torch.stack(draws).to(device=clean.device, dtype=clean.dtype)
    noisy = clean + noise * (sigma / 255.0)
    if clip or quantize:
        noisy = noisy.clamp(0.0, 1.0)
    if quantize:
        noisy = torch.round(noisy * 255.0) / 255.0
    return noisy


def noise_autocorrelation(noise: torch.Tensor, max_lag: int = 3) -> dict[tuple[int, int], float]:
    """Normalised spatial autocorrelation of a noise residual, averaged over channels and images.

    For each image and channel the residual ``n`` is centred (its mean removed) and

        r(dy, dx) = mean over pairs of n[y, x] * n[y + dy, x + dx] / mean(n ** 2)

    where the pairs are all positions with both pixels inside the image (``dy`` rows down,
    ``dx`` columns right). The result is the mean of ``r`` over the channels and images with a
    non-zero variance. White noise gives about 0 at every non-zero lag; ``r(0, 0) = 1``.

    Args:
        noise: residuals ``(B, C, H, W)`` (noisy - clean), float, any scale.
        max_lag: largest ``|dy|`` and ``|dx|``; must be smaller than ``H`` and ``W``.

    Returns:
        ``{(dy, dx): value}`` for ``0 <= dy <= max_lag`` and ``-max_lag <= dx <= max_lag``
        (``dx >= 0`` when ``dy == 0``): one lag of each pair ``r(dy, dx) = r(-dy, -dx)``.

    Example:
        >>> stripes = torch.tensor([1.0, -1.0]).repeat(4, 2).view(1, 1, 4, 4)
        >>> acf = noise_autocorrelation(stripes, max_lag=1)
        >>> acf[(0, 1)], acf[(1, 0)]
        (-1.0, 1.0)
    """
    check_bchw(noise, "noise")
    height, width = noise.shape[-2:]
    if isinstance(max_lag, bool) or not isinstance(max_lag, int) or max_lag < 0:
        raise ConfigError(f"max_lag must be an integer >= 0, got {max_lag!r}")
    if max_lag >= min(height, width):
        raise ShapeError(
            f"max_lag {max_lag} needs images larger than {max_lag}x{max_lag}, got "
            f"{height}x{width}; use a smaller max_lag"
        )
    centred = noise.to(torch.float64)
    centred = centred - centred.mean(dim=(-2, -1), keepdim=True)
    variance = centred.square().mean(dim=(-2, -1))
    valid = variance > 0
    if not bool(valid.any()):
        raise ShapeError("the noise residual is constant in every channel; nothing to correlate")
    result: dict[tuple[int, int], float] = {}
    for dy in range(max_lag + 1):
        for dx in range(-max_lag if dy else 0, max_lag + 1):
            left, right = max(0, -dx), max(0, dx)
            first = centred[..., : height - dy, left : width - right]
            second = centred[..., dy:, right : width - left]
            products = (first * second).mean(dim=(-2, -1))
            result[(dy, dx)] = float((products[valid] / variance[valid]).mean())
    return result
