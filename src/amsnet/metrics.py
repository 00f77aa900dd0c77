"""PSNR and SSIM with the exact conventions of the published evaluation code.

Every function works on batches ``(B, C, H, W)`` on any device, returns one value per image
(shape ``(B,)``, float64) and never loops over pixels. The dataset figure of a paper is the
mean of these per-image values.

**Quantisation (the AMSNet protocol).** The official AMSNet evaluation (``tensor2img`` before
``calculate_psnr_ssim``) clamps the float image to ``[0, 1]``, multiplies it by 255 *in float32*
and rounds with ``numpy.round``, i.e. **round half to even** (``0.5 -> 0``, ``1.5 -> 2``,
``2.5 -> 2``), then casts to uint8. :func:`quantize` does exactly that in the input's dtype
(``torch.round`` also rounds half to even), so for a float32 tensor it gives the same integers
as ``numpy.round(numpy.clip(x, 0, 1) * 255)`` on the same float32 array. AP-BSN instead adds
0.5 and floors (round half *up*); the two differ only on exact ``.5`` ties, which a network's
float output practically never hits.

**SSIM conventions** (name one of :data:`SSIM_CONVENTIONS` in every report, because the two give
different numbers on the same images):

* ``"matlab"``: Wang et al.'s reference, as in the official AMSNet ``calculate_ssim``: 11x11
  Gaussian window with sigma 1.5 (normalised to sum 1), population (co)variances,
  ``C1 = (0.01 * 255)**2``, ``C2 = (0.03 * 255)**2`` on values in ``[0, 255]``; only the
  'valid' part of the SSIM map is averaged (5 pixels cropped on each side); computed per
  channel, then averaged over the channels.
* ``"skimage"``: what ``skimage.metrics.structural_similarity(a, b, channel_axis=-1,
  data_range=255)`` computes with its defaults (AP-BSN's evaluation): 7x7 uniform window,
  sample (co)variances (factor ``49 / 48``), the same ``C1`` and ``C2``, the map cropped by
  ``(7 - 1) // 2 = 3`` pixels on each side before averaging, per channel, then the mean over
  channels.

Both conventions work on the ``[0, 255]`` scale in float64: the quantised integers when
``quantize=True``, else the float values clipped to the data range and scaled to 255.
"""

from __future__ import annotations

import math
from typing import Literal

import torch
import torch.nn.functional as F

from amsnet.errors import ConfigError, ShapeError
from amsnet.ops.checks import check_image_tensor

SsimConvention = Literal["matlab", "skimage"]
SSIM_CONVENTIONS: tuple[str, ...] = ("matlab", "skimage")

# Window parameters of the two SSIM conventions (see the module docstring).
_MATLAB_WINDOW = 11
_MATLAB_SIGMA = 1.5
_SKIMAGE_WINDOW = 7
_K1 = 0.01
_K2 = 0.03


def quantize(
    x: torch.Tensor, *, data_range: float = 1.0, dtype: torch.dtype = torch.float64
) -> torch.Tensor:
    """Convert images to 8-bit values as the AMSNet evaluation does (round half to even).

    Clamps to ``[0, data_range]``, scales to ``[0, 255]`` and rounds half to even, all in the
    input's dtype (float32 for float32 input, exactly like ``tensor2img``), then casts.

    Args:
        x: floating-point tensor of any shape, values nominally in ``[0, data_range]``.
        data_range: the value that maps to 255 (1.0 for the package's images).
        dtype: ``torch.float64`` (default) or ``torch.uint8`` for the result.

    Returns:
        Tensor of ``x``'s shape and the requested dtype with integer values in ``[0, 255]``.

    Example:
        >>> quantize(torch.tensor([0.5, 1.5, 2.5, 300.0]), data_range=255.0).tolist()
        [0.0, 2.0, 2.0, 255.0]
    """
    if not isinstance(x, torch.Tensor) or not x.is_floating_point():
        got = x.dtype if isinstance(x, torch.Tensor) else type(x).__name__
        raise ShapeError(
            f"quantize needs a floating-point tensor, got {got}; 8-bit data is already quantised"
        )
    if not data_range > 0:
        raise ConfigError(f"data_range must be > 0, got {data_range}")
    if dtype not in (torch.float64, torch.uint8):
        raise ConfigError(f"quantize returns torch.float64 or torch.uint8, not {dtype}")
    scaled = x.clamp(0.0, data_range) * (255.0 / data_range)
    return torch.round(scaled).to(dtype)


def psnr(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    data_range: float = 1.0,
    quantize: bool = True,
) -> torch.Tensor:
    """Peak signal-to-noise ratio of each image, in dB.

    ``10 * log10(peak**2 / MSE)`` with the MSE averaged over all pixels and channels of an
    image, computed in float64. Identical images give ``+inf``.

    Args:
        prediction: images ``(B, C, H, W)``, float in ``[0, data_range]`` or uint8 (read as
            already-quantised 8-bit values, whatever ``data_range`` and ``quantize`` say).
        target: same shape as ``prediction``, float or uint8.
        data_range: the peak value of float images (1.0 for the package's images).
        quantize: round both images to 8-bit first (:func:`quantize`, the AMSNet protocol);
            with False, the float values clipped to ``[0, data_range]`` are compared.

    Returns:
        ``(B,)`` float64 PSNR per image.

    Example:
        >>> a = torch.zeros(1, 3, 8, 8)
        >>> round(float(psnr(a, a + 1 / 255)[0]), 4)
        48.1308
    """
    a, b = _pair_on_255_scale(prediction, target, data_range=data_range, quantize=quantize)
    mse = (a - b).square().mean(dim=(1, 2, 3))
    return 10.0 * torch.log10(255.0**2 / mse)


def ssim(
    prediction: torch.Tensor,
    target: torch.Tensor,
    *,
    convention: SsimConvention = "matlab",
    data_range: float = 1.0,
    quantize: bool = True,
) -> torch.Tensor:
    """Structural similarity of each image, in one of the two published conventions.

    Args:
        prediction: images ``(B, C, H, W)``, float in ``[0, data_range]`` or uint8; at least
            11x11 for ``"matlab"`` and 7x7 for ``"skimage"``.
        target: same shape as ``prediction``.
        convention: ``"matlab"`` (AMSNet) or ``"skimage"`` (AP-BSN); see the module docstring.
        data_range: the peak value of float images (1.0 for the package's images).
        quantize: round both images to 8-bit first (the AMSNet protocol); with False, the float
            values clipped to ``[0, data_range]`` and scaled to ``[0, 255]`` are compared.

    Returns:
        ``(B,)`` float64 SSIM per image (mean over the valid map and over the channels).

    Example:
        >>> a = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        >>> ssim(a, a).tolist()
        [1.0, 1.0]
    """
    if convention == "matlab":
        window = _gaussian_window(_MATLAB_WINDOW, _MATLAB_SIGMA)
        covariance_factor = 1.0
    elif convention == "skimage":
        window = torch.full((_SKIMAGE_WINDOW,), 1.0 / _SKIMAGE_WINDOW, dtype=torch.float64)
        count = _SKIMAGE_WINDOW**2
        covariance_factor = count / (count - 1)  # skimage's default use_sample_covariance=True
    else:
        raise ConfigError(
            f"unknown SSIM convention {convention!r}; choose one of {SSIM_CONVENTIONS}"
        )
    a, b = _pair_on_255_scale(prediction, target, data_range=data_range, quantize=quantize)
    size = window.numel()
    height, width = a.shape[-2:]
    if height < size or width < size:
        raise ShapeError(
            f"SSIM ({convention}) needs images of at least {size}x{size}, got {height}x{width}; "
            "evaluate on larger images or crops"
        )
    batch, channels = a.shape[:2]
    # One filtering call for the five local statistics of every channel of every image.
    planes = torch.cat([a, b, a * a, b * b, a * b], dim=0).reshape(-1, 1, height, width)
    kernel = window.to(planes.device)
    filtered = F.conv2d(planes, kernel.view(1, 1, size, 1))  # 'valid': no padding
    filtered = F.conv2d(filtered, kernel.view(1, 1, 1, size))
    filtered = filtered.reshape(5, batch, channels, height - size + 1, width - size + 1)
    mean_a, mean_b, mean_aa, mean_bb, mean_ab = filtered.unbind(0)
    var_a = covariance_factor * (mean_aa - mean_a * mean_a)
    var_b = covariance_factor * (mean_bb - mean_b * mean_b)
    cov_ab = covariance_factor * (mean_ab - mean_a * mean_b)
    c1 = (_K1 * 255.0) ** 2
    c2 = (_K2 * 255.0) ** 2
    ssim_map = ((2 * mean_a * mean_b + c1) * (2 * cov_ab + c2)) / (
        (mean_a * mean_a + mean_b * mean_b + c1) * (var_a + var_b + c2)
    )
    return ssim_map.mean(dim=(2, 3)).mean(dim=1)


def _gaussian_window(size: int, sigma: float) -> torch.Tensor:
    """1-D Gaussian taps ``(size,)`` float64, normalised to sum 1 (``cv2.getGaussianKernel``)."""
    offsets = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    taps = torch.exp(-(offsets**2) / (2 * sigma**2))
    return taps / taps.sum()


def _pair_on_255_scale(
    prediction: torch.Tensor, target: torch.Tensor, *, data_range: float, quantize: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """Check a pair of image batches and bring both to float64 on the ``[0, 255]`` scale."""
    for name, x in (("prediction", prediction), ("target", target)):
        check_image_tensor(x, name, allow_uint8=True)
    if prediction.shape != target.shape:
        raise ShapeError(
            f"prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ in "
            "shape; crop or pad them to the same size before computing metrics"
        )
    if not (math.isfinite(data_range) and data_range > 0):
        raise ConfigError(f"data_range must be a finite number > 0, got {data_range}")
    return (
        _to_255_scale(prediction, data_range, quantize),
        _to_255_scale(target, data_range, quantize),
    )


def _to_255_scale(x: torch.Tensor, data_range: float, quantize_first: bool) -> torch.Tensor:
    if x.dtype == torch.uint8:
        return x.to(torch.float64)
    if quantize_first:
        return quantize(x, data_range=data_range)
    return x.to(torch.float64).clamp(0.0, data_range) * (255.0 / data_range)
