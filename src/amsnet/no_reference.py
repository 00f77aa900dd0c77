"""No-reference quality report of one denoising result: what the noisy input and the output
tell without a clean image.

:func:`assess` measures, from ``noisy`` and ``denoised`` alone:

* **noise** (8-bit sigma): the noise of the input and the noise left in the output, both
  estimated the same way in the image's flattest 16x16 blocks;
* **removed detail**: how much of the output's fine structure the residual
  ``noisy - denoised`` also holds (its regression gain on the output's band-pass image);
* **residual autocorrelation** at lags 1 and 2 (context, see below);
* **colour shift** per channel (8-bit levels): of the image mean and of 32x32-block means;
* **checkerboard** at the pixel-shuffle frequency (the PD artefact R3 removes): the amplitude
  of a pattern of period ``pd_factor`` in the change ``denoised - noisy``, beyond what the
  spectrum around it predicts, and the peak-to-neighbourhood ratio in dB of the output and of
  the input.

Why the residual's autocorrelation is not a detail-loss measure on its own: real camera noise
is spatially correlated (lag-1 autocorrelation about 0.67 on PolyU and 0.70 on CC15,
``../shared/research/noise_models.md``), so a residual that is exactly the noise is itself
correlated, while a blurring denoiser's residual (noise plus removed detail) can be *less*
correlated. The detail-loss numbers therefore relate the residual to the image's structure
instead: the true noise does not depend on where the edges are, removed detail does.

What each number means, how far it can be trusted, and the study that set the warning
thresholds of :meth:`NoReferenceReport.summary`: ``docs/quality_report.md`` and
``benchmarks/no_reference_validation.py``.

Large images: everything except the mean colour shift is measured on an evenly spaced grid of
crops covering at most :data:`SAMPLE_PIXELS` pixels (16 crops of about 512x512 from a
24-megapixel photo), stitched into one image; the mean colour shift uses every pixel. The work
is a few blurs, FFTs and block reductions of that sample: about 3 s for a 24-megapixel photo
on 2 CPU cores, 0.1-0.2 s for 512x512.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields

import numpy as np
import torch
import torch.nn.functional as F

from amsnet.data.io import from_integer
from amsnet.data.noise import noise_autocorrelation
from amsnet.errors import ConfigError, ShapeError
from amsnet.losses import gaussian_blur
from amsnet.ops.checks import check_image_tensor

DEFAULT_PD_FACTOR = 2
"""The inference PD factor of AMSNet and AP-BSN (``pd_factor_eval``; supplement 1.3)."""
SAMPLE_PIXELS = 2048 * 2048
"""Images larger than this are measured on a grid of crops of about this many pixels."""
MIN_SIDE = 32
"""Smallest image side :func:`assess` accepts (a few blocks and one spectrum tile)."""

_BLOCK = 16  # noise and structure blocks: 256 pixels, enough for a variance, small for flatness
_FLAT_FRACTION = 0.1  # the flattest tenth of the blocks: noise evidence
_STRUCTURE_SIGMA = 2.0  # smoothing before the gradient: structure, not the leftover noise
_BAND_SIGMAS = (1.0, 3.0)  # the band of fine detail the structure gain looks at
_LOWPASS_BLOCK = 32  # colour-shift scale: the noise's share of a block mean is about 0.3 level
_SPECTRUM_TILE = 64  # Welch tile (rounded to a multiple of the PD factor)
_REFERENCE_OFFSET = 4  # bins between a PD peak and the windows that predict it
_CLIPPED_FRACTION = 0.01  # blocks with more clipped input pixels are no noise evidence
_LEVELS = 255.0

# Warning thresholds of summary(), from the validation study (docs/quality_report.md).
DETAIL_GAIN_WARNING = 0.25
NOISE_LEFT_FRACTION_WARNING = 0.75
NOISE_LEFT_MIN_WARNING = 1.0
CHECKERBOARD_LEVEL_WARNING = 0.5
CHECKERBOARD_DB_WARNING = 3.0
MEAN_SHIFT_WARNING = 1.0
LOWPASS_SHIFT_WARNING = 1.5


@dataclass(frozen=True)
class NoReferenceReport:
    """What :func:`assess` measured on one image. "Levels" are 8-bit levels (0-255 scale)
    whatever the file's bit depth.

    Attributes:
        input_noise_sigma: estimated noise standard deviation of the input, in levels, in the
            flattest tenth of its 16x16 blocks (a plane fitted to each block removed first).
        noise_left_sigma: the same estimate on the output: the noise left in flat regions
            (about 0.3 even for a perfect 8-bit output: quantisation; texture that looks flat
            also counts).
        residual_structure_gain: least-squares gain of the residual on the output's
            band-pass image (Gaussian blur of sigma 1 minus blur of sigma 3, per channel):
            ``sum(residual * band) / sum(band ** 2)``. The noise does not follow the
            output's edges, removed detail does: about 0 when the residual is noise, 0.05-0.2
            for good denoisers of real noise, 0.2-0.5 for a blur of sigma 0.6-1, about 0.9
            for sigma 1.6 (validation). Unitless; noise left in the output adds a little.
        residual_acf_lag1: normalised autocorrelation of the residual at 1 pixel (mean of the
            horizontal and vertical lags). Context only: real camera noise gives 0.6-0.7 here.
        residual_acf_lag2: the same at 2 pixels (real camera noise: 0.3-0.4).
        mean_shift_r, mean_shift_g, mean_shift_b: mean of ``denoised - noisy`` per channel,
            in levels (signed; the noise has mean 0, so this is the output's colour cast).
            A grayscale image gives its one value in all three.
        lowpass_shift_r, lowpass_shift_g, lowpass_shift_b: RMS over the image of the 32x32
            block means of ``denoised - noisy``, per channel, in levels: local colour shifts
            (includes the mean shift; the input noise adds about 0.2-0.4 levels).
        checkerboard_level: RMS amplitude, in levels, of a pattern of period ``pd_factor``
            in ``denoised - noisy`` beyond what its spectrum around those frequencies
            predicts: the pattern the denoiser added (the noise has no periodic mean, so this
            is the pattern of the true error); a checkerboard of +-a levels gives a. A
            period-``pd_factor`` texture of the photo that the denoiser removed counts too.
        checkerboard_db: ratio, in dB, of the output's power at the period-``pd_factor``
            frequencies to the power predicted from the neighbouring frequencies (0 dB: no
            peak).
        input_checkerboard_db: the same ratio for the input (demosaicking and JPEG leave
            period-2 and period-8 traces in camera images).
        pd_factor: the period looked for, in pixels.
        measured_megapixels: pixels the measurements (except the mean shift) used, in
            millions.
    """

    input_noise_sigma: float
    noise_left_sigma: float
    residual_structure_gain: float
    residual_acf_lag1: float
    residual_acf_lag2: float
    mean_shift_r: float
    mean_shift_g: float
    mean_shift_b: float
    lowpass_shift_r: float
    lowpass_shift_g: float
    lowpass_shift_b: float
    checkerboard_level: float
    checkerboard_db: float
    input_checkerboard_db: float
    pd_factor: float
    measured_megapixels: float

    def as_row(self) -> dict[str, float]:
        """The numbers in :data:`COLUMNS` order, for CSV and JSON."""
        return {name: float(value) for name, value in asdict(self).items()}

    def warnings(self) -> list[str]:
        """The problems the thresholds of ``docs/quality_report.md`` flag, in plain words."""
        found = []
        if self.residual_structure_gain > DETAIL_GAIN_WARNING:
            found.append("detail removed")
        if (
            self.noise_left_sigma > NOISE_LEFT_FRACTION_WARNING * self.input_noise_sigma
            and self.noise_left_sigma > NOISE_LEFT_MIN_WARNING
        ):
            found.append("noise left")
        # A photo's own period-2 texture (demosaicking, JPEG) that the denoiser removed also
        # has a level; only a peak that stands out more in the output than in the input warns.
        peak_needed = max(
            CHECKERBOARD_DB_WARNING, self.input_checkerboard_db + CHECKERBOARD_DB_WARNING
        )
        if (
            self.checkerboard_level > CHECKERBOARD_LEVEL_WARNING
            and self.checkerboard_db > peak_needed
        ):
            found.append("checkerboard visible")
        means = (self.mean_shift_r, self.mean_shift_g, self.mean_shift_b)
        lowpass = (self.lowpass_shift_r, self.lowpass_shift_g, self.lowpass_shift_b)
        if max(map(abs, means)) > MEAN_SHIFT_WARNING or max(lowpass) > LOWPASS_SHIFT_WARNING:
            found.append("colour shift")
        return found

    def summary(self) -> str:
        """One line for people: the main numbers and the warnings that matter."""
        means = (self.mean_shift_r, self.mean_shift_g, self.mean_shift_b)
        lowpass = (self.lowpass_shift_r, self.lowpass_shift_g, self.lowpass_shift_b)
        found = self.warnings()
        verdict = "WARNING: " + ", ".join(found) if found else "no warnings"
        return (
            f"noise sigma {self.input_noise_sigma:.2f} -> {self.noise_left_sigma:.2f}; "
            f"residual-structure gain {self.residual_structure_gain:+.2f}; "
            f"checkerboard {self.checkerboard_level:.2f} levels "
            f"({self.checkerboard_db:+.1f} dB); "
            f"colour shift {max(map(abs, means)):.2f} mean, {max(lowpass):.2f} local; {verdict}"
        )


COLUMNS: tuple[str, ...] = tuple(f.name for f in fields(NoReferenceReport))
"""The header of :meth:`NoReferenceReport.as_row` (stable order)."""


def pd_factor_for(method: object) -> int:
    """The checkerboard period to look for in ``method``'s outputs: its inference PD factor
    (``settings.pd_factor_eval``: AMSNet, AP-BSN), else :data:`DEFAULT_PD_FACTOR` (a
    one-pass student learned its teacher's PD-2 output, artefacts included)."""
    factor = getattr(getattr(method, "settings", None), "pd_factor_eval", None)
    return factor if isinstance(factor, int) and 2 <= factor <= 8 else DEFAULT_PD_FACTOR


def assess(
    noisy: torch.Tensor | np.ndarray,
    denoised: torch.Tensor | np.ndarray,
    *,
    pd_factor: int = DEFAULT_PD_FACTOR,
) -> NoReferenceReport:
    """Measure one denoising result without a clean image.

    Args:
        noisy: the input, float ``(C, H, W)`` in ``[0, 1]`` (``C = 1`` or ``3``), or the
            integer ``(H, W, C)`` / ``(H, W)`` array of a file (uint8 or uint16, as
            :class:`amsnet.denoise_files.FileResult` keeps it).
        denoised: the output, in either form (the two may differ in form and bit depth).
        pd_factor: the period of the checkerboard to look for: the method's inference PD
            factor (2 for AMSNet and AP-BSN, and for a student distilled from them).

    Returns:
        The :class:`NoReferenceReport`.

    Raises:
        ShapeError: an input is not an image of those forms, the two differ in size or
            channels, a side is below :data:`MIN_SIDE` (or ``11 * pd_factor``), or a value
            is not finite.
        ConfigError: ``pd_factor`` is not an integer in 2..8.

    Example:
        >>> noisy = torch.rand(3, 64, 64)
        >>> report = assess(noisy, noisy)
        >>> report.residual_structure_gain, report.mean_shift_g
        (0.0, 0.0)
    """
    if isinstance(pd_factor, bool) or not isinstance(pd_factor, int) or not 2 <= pd_factor <= 8:
        raise ConfigError(f"pd_factor must be an integer in 2..8, got {pd_factor!r}")
    noisy_image = _Image.of(noisy, "noisy")
    denoised_image = _Image.of(denoised, "denoised")
    if (noisy_image.channels, *noisy_image.size) != (denoised_image.channels, *denoised_image.size):
        raise ShapeError(
            f"noisy and denoised differ in size: {noisy_image.describe()} against "
            f"{denoised_image.describe()}; pass the output of this very input"
        )
    height, width = noisy_image.size
    smallest = max(MIN_SIDE, 11 * pd_factor)
    if min(height, width) < smallest:
        raise ShapeError(
            f"the images are {height}x{width}; a quality report needs at least "
            f"{smallest}x{smallest} pixels"
        )
    crops = _sample_crops(height, width, pd_factor)
    x = noisy_image.stitched(crops) * _LEVELS
    y = denoised_image.stitched(crops) * _LEVELS
    for value, name in ((x, "noisy"), (y, "denoised")):
        if not bool(torch.isfinite(value).all()):
            raise ShapeError(f"{name} holds NaN or infinite values; nothing can be measured")
    residual = x - y
    shift = denoised_image.channel_means() - noisy_image.channel_means()

    blocks = _Blocks(x, y)
    flat = blocks.flat
    noisy_variance = _plane_residual_variance(x, _BLOCK).mean(dim=0)[blocks.valid]
    denoised_variance = _plane_residual_variance(y, _BLOCK).mean(dim=0)[blocks.valid]
    lag1, lag2 = _residual_autocorrelation(residual)
    lowpass = F.avg_pool2d(residual[None], _LOWPASS_BLOCK)[0]
    lowpass_rms = lowpass.square().mean(dim=(1, 2)).sqrt()
    # The pattern's amplitude is measured in the change the denoiser made: the noise has no
    # periodic mean, so that is the pattern of the error, without the photo's own pattern.
    level, _ = _periodic_peak(residual, pd_factor)
    _, output_db = _periodic_peak(y, pd_factor)
    _, input_db = _periodic_peak(x, pd_factor)
    return NoReferenceReport(
        input_noise_sigma=float(noisy_variance[flat].median().sqrt()),
        noise_left_sigma=float(denoised_variance[flat].median().sqrt()),
        residual_structure_gain=_structure_gain(residual, y),
        residual_acf_lag1=lag1,
        residual_acf_lag2=lag2,
        **_per_channel("mean_shift", shift * _LEVELS),
        **_per_channel("lowpass_shift", lowpass_rms),
        checkerboard_level=level,
        checkerboard_db=output_db,
        input_checkerboard_db=input_db,
        pd_factor=float(pd_factor),
        measured_megapixels=x.shape[-2] * x.shape[-1] / 1e6,
    )


@dataclass(frozen=True)
class _Image:
    """One input of :func:`assess` in its own form: a float ``(C, H, W)`` tensor or an
    integer ``(H, W, C)`` array (converted crop by crop, never whole)."""

    pixels: torch.Tensor | np.ndarray

    @classmethod
    def of(cls, image: torch.Tensor | np.ndarray, name: str) -> _Image:
        if isinstance(image, np.ndarray):
            if image.dtype not in (np.uint8, np.uint16):
                raise ShapeError(
                    f"{name} as a numpy array must be uint8 or uint16 (H, W, C), got dtype "
                    f"{image.dtype}; pass float images as a (C, H, W) torch tensor in [0, 1]"
                )
            array = image[:, :, None] if image.ndim == 2 else image
            if array.ndim != 3 or array.shape[2] not in (1, 3):
                raise ShapeError(
                    f"{name} must be an (H, W, C) array with C = 1 or 3, got {image.shape}"
                )
            return cls(array)
        check_image_tensor(image, name, ndim=3)
        if image.shape[0] not in (1, 3):
            raise ShapeError(
                f"{name} must have 1 or 3 channels (C, H, W), got {tuple(image.shape)}"
            )
        return cls(image)

    @property
    def channels(self) -> int:
        shape = self.pixels.shape
        return int(shape[2] if isinstance(self.pixels, np.ndarray) else shape[0])

    @property
    def size(self) -> tuple[int, int]:
        shape = self.pixels.shape
        return (shape[0], shape[1]) if isinstance(self.pixels, np.ndarray) else tuple(shape[1:])

    def describe(self) -> str:
        height, width = self.size
        return f"{self.channels} channel(s) {height}x{width}"

    def crop(self, top: int, left: int, height: int, width: int) -> torch.Tensor:
        """Float32 ``(C, height, width)`` in ``[0, 1]``."""
        if isinstance(self.pixels, np.ndarray):
            return from_integer(self.pixels[top : top + height, left : left + width])
        return self.pixels[:, top : top + height, left : left + width].float()

    def stitched(self, crops: list[list[tuple[int, int, int, int]]]) -> torch.Tensor:
        """The crops ``[row][column] = (top, left, height, width)`` as one ``(C, h, w)``."""
        rows = [torch.cat([self.crop(*box) for box in row], dim=-1) for row in crops]
        return torch.cat(rows, dim=-2)

    def channel_means(self) -> torch.Tensor:
        """Mean of every pixel per channel, ``(C,)`` float64 in ``[0, 1]``."""
        if isinstance(self.pixels, np.ndarray):
            maximum = 255.0 if self.pixels.dtype == np.uint8 else 65535.0
            means = self.pixels.mean(axis=(0, 1), dtype=np.float64) / maximum
            return torch.from_numpy(np.asarray(means, dtype=np.float64))
        return self.pixels.double().mean(dim=(1, 2)).cpu()


def _sample_crops(height: int, width: int, pd_factor: int) -> list[list[tuple[int, int, int, int]]]:
    """The whole image, or an evenly spaced grid of crops of about :data:`SAMPLE_PIXELS`.

    Crops are whole spectrum tiles in size and start at multiples of ``2 * pd_factor``, so
    neither the PD phase nor a Bayer mosaic's phase changes between crops.
    """
    if height * width <= SAMPLE_PIXELS:
        return [[(0, 0, height, width)]]
    tile = _spectrum_tile(pd_factor, height, width)
    # Crops of about 512 pixels (fewer, smaller ones for a small budget), at least 4 of them.
    side = tile * max(1, min(round(512 / tile), math.isqrt(SAMPLE_PIXELS) // (2 * tile)))
    count = max(1, math.isqrt(SAMPLE_PIXELS // (side * side)))
    align = 2 * pd_factor

    def starts(length: int) -> list[int]:
        if length <= side:
            return [0]
        steps = np.linspace(0, length - side, count)
        return sorted({int(s) // align * align for s in steps})

    crop_height, crop_width = min(side, height), min(side, width)
    return [
        [(top, left, crop_height, crop_width) for left in starts(width)] for top in starts(height)
    ]


class _Blocks:
    """The 16x16 blocks of the sample: which are usable, how structured, and the flattest
    tenth (indices into the usable ones)."""

    def __init__(self, noisy: torch.Tensor, denoised: torch.Tensor) -> None:
        gray = denoised.mean(dim=0, keepdim=True)[None]
        smooth = gaussian_blur(gray, _STRUCTURE_SIGMA)[0, 0]
        gradient = torch.zeros_like(smooth)
        gradient[:, :-1] += (smooth[:, 1:] - smooth[:, :-1]).square()
        gradient[:-1, :] += (smooth[1:, :] - smooth[:-1, :]).square()
        structure = _block_view(gradient[None], _BLOCK).mean(dim=-1)[0]
        # Saturated pixels have no noise; blocks full of them would pass for flat and clean.
        clipped = (noisy <= 0.5) | (noisy >= _LEVELS - 0.5)
        clipped_share = _block_view(clipped.float(), _BLOCK).mean(dim=(0, -1))
        valid = clipped_share <= _CLIPPED_FRACTION
        if not bool(valid.any()):
            valid = torch.ones_like(valid)
        self.valid = valid
        self.structure = structure[valid]
        count = max(1, math.ceil(_FLAT_FRACTION * self.structure.numel()))
        order = torch.argsort(self.structure)
        self.flat = order[:count]


def _block_view(x: torch.Tensor, block: int) -> torch.Tensor:
    """``(C, H, W)`` -> ``(C, blocks, block * block)`` over the whole blocks (row-major)."""
    channels, height, width = x.shape
    rows, columns = height // block, width // block
    tiles = x[:, : rows * block, : columns * block].reshape(channels, rows, block, columns, block)
    return tiles.permute(0, 1, 3, 2, 4).reshape(channels, rows * columns, block * block)


def _plane_residual_variance(x: torch.Tensor, block: int) -> torch.Tensor:
    """Variance of each block around its least-squares plane, ``(C, blocks)``.

    The plane takes out the block's mean and its shading, which are image, not noise; the
    divisor is ``block**2 - 3`` (three fitted parameters), so white noise gives its variance.
    """
    values = _block_view(x.double(), block)
    coordinate = torch.arange(block, dtype=torch.float64, device=x.device) - (block - 1) / 2
    rows = coordinate.repeat_interleave(block)
    columns = coordinate.repeat(block)
    design = torch.stack((torch.ones_like(rows), rows, columns), dim=1)
    coefficients = values @ torch.linalg.pinv(design).T  # (C, blocks, 3)
    fitted = coefficients @ design.T
    return (values - fitted).square().sum(dim=-1) / (block * block - 3)


def _residual_autocorrelation(residual: torch.Tensor) -> tuple[float, float]:
    """Lag-1 and lag-2 autocorrelation (mean of horizontal and vertical); 0 for no residual."""
    if not bool((residual != residual.flatten(1).mean(dim=1)[:, None, None]).any()):
        return 0.0, 0.0
    acf = noise_autocorrelation(residual[None], max_lag=2)
    return (acf[(0, 1)] + acf[(1, 0)]) / 2, (acf[(0, 2)] + acf[(2, 0)]) / 2


def _spectrum_tile(pd_factor: int, height: int, width: int) -> int:
    per_period = min(math.ceil(_SPECTRUM_TILE / pd_factor), min(height, width) // pd_factor)
    return pd_factor * per_period


def _periodic_peak(x: torch.Tensor, pd_factor: int) -> tuple[float, float]:
    """Amplitude (levels) and peak-to-neighbourhood ratio (dB) of a period-``pd_factor``
    pattern in ``x`` ``(C, H, W)`` on the 0-255 scale.

    Welch's method: Hann-windowed tiles (a multiple of ``pd_factor`` wide, so every
    period-``pd_factor`` frequency ``(k, l) / pd_factor`` falls on a bin), power averaged over
    tiles and channels and scaled so that the bins sum to the mean square. An on-bin pattern
    puts all its power in the 3x3 bins around its frequency (the Hann window's spectrum has
    three taps). Each such 3x3 sum is compared with the mean 3x3 sum at 4 bins away along the
    axes, the spectrum's own level there: along the axis only for frequencies on an axis,
    where natural images have more power than off it.
    """
    tile = _spectrum_tile(pd_factor, *x.shape[-2:])
    tiles = _block_view(x.double(), tile)  # (C, tiles, tile * tile)
    tiles = tiles - tiles.mean(dim=-1, keepdim=True)
    hann = torch.hann_window(tile, periodic=True, dtype=torch.float64, device=x.device)
    window = (hann[:, None] * hann[None, :]).flatten()
    spectrum = torch.fft.fft2((tiles * window).reshape(*tiles.shape[:2], tile, tile))
    power = spectrum.abs().square().mean(dim=(0, 1)) / (tile * tile * window.square().sum())
    step = tile // pd_factor
    peak_total = reference_total = 0.0
    for k in range(pd_factor):
        for m in range(pd_factor):
            if k == m == 0:
                continue
            centre = (k * step, m * step)
            if k == 0:
                offsets = [(0, -_REFERENCE_OFFSET), (0, _REFERENCE_OFFSET)]
            elif m == 0:
                offsets = [(-_REFERENCE_OFFSET, 0), (_REFERENCE_OFFSET, 0)]
            else:
                offsets = [(0, -_REFERENCE_OFFSET), (0, _REFERENCE_OFFSET)]
                offsets += [(-_REFERENCE_OFFSET, 0), (_REFERENCE_OFFSET, 0)]
            peak_total += _window_sum(power, centre)
            reference_total += sum(
                _window_sum(power, (centre[0] + a, centre[1] + b)) for a, b in offsets
            ) / len(offsets)
    level = math.sqrt(max(0.0, peak_total - reference_total))
    if reference_total <= 0:
        return level, 0.0
    return level, 10 * math.log10(max(peak_total, 1e-12 * reference_total) / reference_total)


def _window_sum(power: torch.Tensor, centre: tuple[int, int]) -> float:
    """Sum of the 3x3 bins around ``centre`` (indices wrap: the spectrum is periodic)."""
    size = power.shape[0]
    rows = [(centre[0] + d) % size for d in (-1, 0, 1)]
    columns = [(centre[1] + d) % size for d in (-1, 0, 1)]
    return float(power[rows][:, columns].sum())


def _structure_gain(residual: torch.Tensor, denoised: torch.Tensor) -> float:
    """Regression gain of ``residual`` on the band-pass of ``denoised`` (both ``(C, H, W)``).

    The band (scales of about 1-3 pixels) is where denoisers lose detail; blurring at sigma 1
    first keeps most of the noise left in the output out of it.
    """
    image = denoised[None].float()
    band = (gaussian_blur(image, _BAND_SIGMAS[0]) - gaussian_blur(image, _BAND_SIGMAS[1]))[0]
    energy = band.double().square().sum()
    if energy <= 0:
        return 0.0
    return float((residual * band).double().sum() / energy)


def _per_channel(prefix: str, values: torch.Tensor) -> dict[str, float]:
    """``{prefix_r, prefix_g, prefix_b}`` from 3 values, or the one gray value in all three."""
    numbers = [float(v) for v in values]
    if len(numbers) == 1:
        numbers *= 3
    return {f"{prefix}_{name}": value for name, value in zip("rgb", numbers, strict=True)}
