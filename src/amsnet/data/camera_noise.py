"""Camera-like noise with exact ground truth, made from clean sRGB by unprocessing.

:func:`camera_noise` follows Brooks, Mildenhall, Xue, Chen, Sharlet, Barron, "Unprocessing
Images for Learned Raw Denoising" (CVPR 2019, arXiv:1811.11127). The clean sRGB image is taken
back to a raw Bayer mosaic with random camera metadata (Brooks' colour matrices, gains and
noise-level sampler are the constants below), heteroscedastic sensor noise is added there, and
the mosaic is demosaicked (:mod:`amsnet.data.bayer`) and processed back to sRGB.
Demosaicking spreads each sensor sample over its neighbours, which gives the lag-1 correlation
real camera noise has and AWGN (:func:`amsnet.data.noise.add_gaussian_noise`) lacks; compare
them with :func:`amsnet.data.noise.noise_autocorrelation`. Named levels
(:data:`ISO_LIKE_LEVELS`) and an optional JPEG step mimic PolyU-like data.

:class:`CameraNoiseParams` records everything needed to reproduce the noise of one image.

All randomness comes from an explicit :class:`torch.Generator` (or a seed that makes one).
Images are float RGB ``(B, 3, H, W)`` in ``[0, 1]``.
"""

from __future__ import annotations

import io
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from amsnet.data.bayer import (
    bayer_masks,
    BAYER_PATTERNS,
    demosaic_bilinear,
    demosaic_malvar,
    DEMOSAIC_METHODS,
)
from amsnet.data.images import from_uint8, to_uint8
from amsnet.errors import ConfigError, ShapeError
from amsnet.ops.checks import check_bchw

# Camera metadata of Brooks et al. (google-research/unprocessing, unprocess.py): four
# XYZ -> camera matrices whose random convex combination is the image's colour matrix.
BROOKS_XYZ_TO_CAMERA: tuple[tuple[tuple[float, float, float], ...], ...] = (
    ((1.0234, -0.2969, -0.2266), (-0.5625, 1.6328, -0.0469), (-0.0703, 0.2188, 0.6406)),
    ((0.4913, -0.0541, -0.0202), (-0.613, 1.3513, 0.2906), (-0.1564, 0.2151, 0.7183)),
    ((0.838, -0.263, -0.0639), (-0.2887, 1.0725, 0.2496), (-0.0627, 0.1427, 0.5438)),
    ((0.6596, -0.2079, -0.0562), (-0.4782, 1.3016, 0.1933), (-0.097, 0.1581, 0.5181)),
)
# Linear sRGB -> XYZ under D65.
SRGB_TO_XYZ: tuple[tuple[float, float, float], ...] = (
    (0.4124564, 0.3575761, 0.1804375),
    (0.2126729, 0.7151522, 0.0721750),
    (0.0193339, 0.1191920, 0.9503041),
)

# Brooks' level sampler (natural logarithms): log shot ~ U(log 1e-4, log 0.012),
# log read = 2.18 * log shot + 1.20 + N(0, 0.26^2).
SHOT_NOISE_RANGE: tuple[float, float] = (1e-4, 0.012)
READ_NOISE_SLOPE = 2.18
READ_NOISE_INTERCEPT = 1.20
READ_NOISE_SPREAD = 0.26

# Named shot-noise levels (read noise from the Brooks line without its random spread), tuned
# so that the mean sRGB noise standard deviation over Kodak24 (full inverse, no JPEG, random
# camera metadata) is about 3, 6 and 12 on the 0-255 scale; re-measure with
# benchmarks/noise_correlation.py.
ISO_LIKE_LEVELS: dict[str, float] = {"low": 1.1e-4, "medium": 4.3e-4, "high": 1.7e-3}

GAMMA = 2.2
_HIGHLIGHT_START = 0.9  # grey level above which the inverse gains fade out (Brooks)
_REFERENCE = (
    "Brooks et al., Unprocessing Images for Learned Raw Denoising, CVPR 2019, arXiv:1811.11127"
)


@dataclass(frozen=True)
class CameraNoiseParams:
    """Everything needed to reproduce the camera noise of one image.

    Attributes:
        ccm_weights: the four weights of Brooks' XYZ -> camera matrices (drawn from
            ``U(1e-8, 1e8)``; their normalised combination is the colour matrix).
        rgb_to_camera: the resulting 3x3 linear-sRGB -> camera matrix (rows sum to 1);
            camera -> sRGB is its inverse.
        brightness_gain: digital gain ``g`` removed by unprocessing (``1 / N(0.8, 0.1^2)``).
        red_gain: white-balance gain of red (``U(1.9, 2.4)``).
        blue_gain: white-balance gain of blue (``U(1.5, 1.9)``).
        shot_noise: ``lambda_shot``: variance per unit of raw signal.
        read_noise: ``lambda_read``: signal-independent variance on the ``[0, 1]`` raw scale.
        bayer_pattern: colour filter layout of the 2x2 tile, e.g. ``"rggb"``.
        demosaic: ``"bilinear"`` (Brooks) or ``"malvar"`` (Malvar-He-Cutler 2004).
        full_inverse: whether processing re-applied the gain and the tone curve.
        jpeg_quality: JPEG quality of the noisy output, or None.
        jpeg_target: whether the clean target was JPEG-compressed too.
        seed: the seed given to :func:`camera_noise`, or None when a generator was given.
        batch_index: position of the image in the batch drawn from that seed.
        level: the named ISO-like level, or None.
        sources: where each noise parameter came from (``"drawn"``, ``"given"``, a level).
    """

    ccm_weights: tuple[float, float, float, float]
    rgb_to_camera: tuple[tuple[float, float, float], ...]
    brightness_gain: float
    red_gain: float
    blue_gain: float
    shot_noise: float
    read_noise: float
    bayer_pattern: str = "rggb"
    demosaic: str = "bilinear"
    full_inverse: bool = True
    jpeg_quality: int | None = None
    jpeg_target: bool = False
    seed: int | None = None
    batch_index: int = 0
    level: str | None = None
    sources: dict[str, str] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable dictionary of the parameters, their sources and the model."""
        record = asdict(self)
        record["ccm_weights"] = list(self.ccm_weights)
        record["rgb_to_camera"] = [list(row) for row in self.rgb_to_camera]
        record["model"] = "unprocessing"
        record["reference"] = _REFERENCE
        return record


def camera_noise(
    clean: torch.Tensor,
    *,
    generator: torch.Generator | None = None,
    seed: int | None = None,
    shot_noise: float | None = None,
    read_noise: float | None = None,
    iso_like_level: str | None = None,
    jpeg_quality: int | None = None,
    jpeg_target: bool = False,
    full_inverse: bool = True,
    bayer_pattern: str = "rggb",
    demosaic: str = "bilinear",
) -> tuple[torch.Tensor, torch.Tensor, tuple[CameraNoiseParams, ...]]:
    """Camera-like noisy/clean sRGB pairs from clean sRGB images (Brooks et al. unprocessing).

    Per image: random camera metadata (colour matrix, brightness gain, white balance), then

    1. unprocess: clip to ``[0, 1]``, invert the smoothstep tone curve, invert gamma 2.2, apply
       sRGB -> camera, divide by the white-balance and brightness gains (fading the division
       out above grey level 0.9 so that highlights stay white), clip, Bayer mosaic;
    2. noise on the mosaic: ``raw + N(0, shot * raw + read)`` per sensor sample;
    3. process: multiply by the white-balance gains (and the brightness gain when
       ``full_inverse``), clip, demosaic (``demosaic``), camera -> sRGB, clip, gamma ``1 / 2.2``
       (and the smoothstep when ``full_inverse``).

    The clean target is the clean mosaic sent through the *same* demosaic and processing, so
    the pair differs by the noise alone, not by demosaicking error. With ``full_inverse=True``
    (default) the processing is the exact inverse of the unprocessing, so the clean target
    equals the input up to the mosaic/demosaic round trip (measured on the whole astronaut
    image: 27.8 dB PSNR with bilinear, 32.1 dB with Malvar; the colour pipeline alone is exact
    to ~70 dB) and the highlights: where the linear grey level exceeds 0.9, unprocessing
    divides by less than the full gains, so processing brightens those pixels up to white.
    With False it is Brooks' released ``process()``, which skips the gain and the tone curve
    (darker, flatter targets).

    Noise levels: given values, else a named level (:data:`ISO_LIKE_LEVELS`; read noise from
    Brooks' line without its random spread), else drawn per image as in Brooks
    (log-uniform shot noise on ``[1e-4, 0.012]``, read noise from the log-linear line with
    spread 0.26). A given shot noise without read noise takes the read noise from the line
    with its spread. All random numbers are drawn whatever is given, in a fixed order, so the
    same seed gives the same camera and the same standard-normal noise field at any level.

    Randomness: pass ``generator`` (draws happen on its device) or ``seed`` (a CPU generator,
    so the result is the same on every device). One generator serves the whole batch: image
    ``i``'s noise depends on the batch. For noise fixed per file, call once per image with
    ``seed=image_seed(set_seed, file_name)``.

    Sizes: odd heights or widths are extended by one replicated row/column at the bottom/right
    (the Bayer tile needs even sizes), processed, and cropped back.

    JPEG: with ``jpeg_quality`` the noisy output is rounded to 8 bit and JPEG-compressed in
    memory with Pillow (default 4:2:0 chroma subsampling), like the PolyU crops (quality 75).
    By default the clean target is not compressed, so it stays the exact scene and the residual
    also holds the JPEG error of the content (nearly white, and dominant at weak noise). With
    ``jpeg_target=True`` the target is compressed the same way, as PolyU's mean images are; the
    residual is then close to real PolyU noise in its correlation, but the target is no longer
    the exact clean image.

    Args:
        clean: clean sRGB images ``(B, 3, H, W)``, float in ``[0, 1]``.
        generator: source of randomness (exclusive with ``seed``).
        seed: seed of a CPU generator (exclusive with ``generator``).
        shot_noise: ``lambda_shot`` for every image (>= 0), or None.
        read_noise: ``lambda_read`` for every image (>= 0), or None.
        iso_like_level: ``"low"``, ``"medium"`` or ``"high"`` (exclusive with the two above).
        jpeg_quality: JPEG quality 1-100 for the noisy output, or None for no compression.
        jpeg_target: compress the clean target with the same quality (needs ``jpeg_quality``).
        full_inverse: re-apply the brightness gain and the tone curve when processing.
        bayer_pattern: one of :data:`amsnet.data.bayer.BAYER_PATTERNS`.
        demosaic: ``"bilinear"`` (Brooks; the default) or ``"malvar"`` (Malvar, He, Cutler,
            ICASSP 2004, gradient-corrected bilinear, as MATLAB's ``demosaic`` used by CBDNet):
            sharper targets and noise correlated over a wider (5x5) neighbourhood.

    Returns:
        ``(noisy, clean_processed, params)``: two float tensors shaped and typed like
        ``clean`` with values in ``[0, 1]``, and one :class:`CameraNoiseParams` per image.

    Example:
        >>> clean = torch.rand(1, 3, 8, 8, generator=torch.Generator().manual_seed(0))
        >>> noisy, target, params = camera_noise(clean, seed=1, iso_like_level="medium")
        >>> noisy.shape, params[0].level
        (torch.Size([1, 3, 8, 8]), 'medium')
    """
    check_bchw(clean, "clean")
    if clean.shape[1] != 3:
        raise ShapeError(f"clean must have 3 (RGB) channels, got {clean.shape[1]}")
    if (generator is None) == (seed is None):
        raise ConfigError("camera_noise needs exactly one of generator= or seed=")
    if bayer_pattern not in BAYER_PATTERNS:
        raise ConfigError(
            f"unknown bayer_pattern {bayer_pattern!r}; choose one of {BAYER_PATTERNS}"
        )
    if demosaic not in DEMOSAIC_METHODS:
        raise ConfigError(f"unknown demosaic {demosaic!r}; choose one of {DEMOSAIC_METHODS}")
    if iso_like_level is not None:
        if iso_like_level not in ISO_LIKE_LEVELS:
            raise ConfigError(
                f"unknown iso_like_level {iso_like_level!r}; choose one of {tuple(ISO_LIKE_LEVELS)}"
            )
        if shot_noise is not None or read_noise is not None:
            raise ConfigError("give either iso_like_level or shot_noise/read_noise, not both")
    for name, value in (("shot_noise", shot_noise), ("read_noise", read_noise)):
        if value is not None and not (math.isfinite(value) and value >= 0):
            raise ConfigError(f"{name} must be a finite number >= 0, got {value}")
    if jpeg_quality is not None and not (
        isinstance(jpeg_quality, int) and 1 <= jpeg_quality <= 100
    ):
        raise ConfigError(f"jpeg_quality must be an integer in 1..100 or None, got {jpeg_quality}")
    if jpeg_target and jpeg_quality is None:
        raise ConfigError("jpeg_target=True needs a jpeg_quality (75 for PolyU-like data)")
    if generator is None:
        generator = torch.Generator().manual_seed(int(seed))

    batch, _, height, width = clean.shape
    work_dtype = torch.float64 if clean.dtype == torch.float64 else torch.float32
    image = clean.to(work_dtype)
    if height % 2 or width % 2:
        image = F.pad(image, (0, width % 2, 0, height % 2), mode="replicate")

    drawn = _draw_camera(batch, generator)
    shot, read, sources = _noise_levels(drawn, shot_noise, read_noise, iso_like_level)
    standard_normal = torch.randn(
        (batch, 1, *image.shape[-2:]), generator=generator, device=generator.device
    )

    device = clean.device
    rgb_to_camera = drawn["rgb_to_camera"].to(device=device, dtype=work_dtype)
    camera_to_rgb = torch.linalg.inv(drawn["rgb_to_camera"]).to(device=device, dtype=work_dtype)
    gain = drawn["brightness_gain"].to(device=device, dtype=work_dtype)
    red = drawn["red_gain"].to(device=device, dtype=work_dtype)
    blue = drawn["blue_gain"].to(device=device, dtype=work_dtype)
    masks = bayer_masks(bayer_pattern, *image.shape[-2:], device=device, dtype=work_dtype)

    raw = _unprocess(image, rgb_to_camera, gain, red, blue, masks)
    shot_t = shot.to(device=device, dtype=work_dtype).view(-1, 1, 1, 1)
    read_t = read.to(device=device, dtype=work_dtype).view(-1, 1, 1, 1)
    noise_std = torch.sqrt(shot_t * raw + read_t)
    noisy_raw = raw + noise_std * standard_normal.to(device=device, dtype=work_dtype)

    # Both mosaics go through one processing call, so a zero noise field gives identical bits.
    processed = _process(
        torch.cat([noisy_raw, raw]),
        camera_to_rgb.repeat(2, 1, 1),
        gain.repeat(2),
        red.repeat(2),
        blue.repeat(2),
        masks,
        full_inverse=full_inverse,
        demosaic=demosaic,
    )
    processed = processed[..., :height, :width]
    noisy, clean_processed = processed[:batch], processed[batch:]
    if jpeg_quality is not None:
        noisy = _jpeg(noisy, jpeg_quality)
        if jpeg_target:
            clean_processed = _jpeg(clean_processed, jpeg_quality)

    params = tuple(
        CameraNoiseParams(
            ccm_weights=tuple(drawn["ccm_weights"][index].tolist()),
            rgb_to_camera=tuple(tuple(row) for row in drawn["rgb_to_camera"][index].tolist()),
            brightness_gain=float(drawn["brightness_gain"][index]),
            red_gain=float(drawn["red_gain"][index]),
            blue_gain=float(drawn["blue_gain"][index]),
            shot_noise=float(shot[index]),
            read_noise=float(read[index]),
            bayer_pattern=bayer_pattern,
            demosaic=demosaic,
            full_inverse=full_inverse,
            jpeg_quality=jpeg_quality,
            jpeg_target=jpeg_target,
            seed=None if seed is None else int(seed),
            batch_index=index,
            level=iso_like_level,
            sources=dict(sources),
        )
        for index in range(batch)
    )
    return noisy.to(clean.dtype), clean_processed.to(clean.dtype), params


def _draw_camera(batch: int, generator: torch.Generator) -> dict[str, torch.Tensor]:
    """Brooks' random metadata and standardised level draws for ``batch`` images (float64)."""
    options = {"generator": generator, "device": generator.device, "dtype": torch.float64}
    weights = torch.rand(batch, 4, **options) * (1e8 - 1e-8) + 1e-8
    gain_draw = torch.randn(batch, **options)
    red = torch.rand(batch, **options) * (2.4 - 1.9) + 1.9
    blue = torch.rand(batch, **options) * (1.9 - 1.5) + 1.5
    shot_uniform = torch.rand(batch, **options)
    read_normal = torch.randn(batch, **options)

    weights = weights.cpu()
    matrices = torch.tensor(BROOKS_XYZ_TO_CAMERA, dtype=torch.float64)
    xyz_to_camera = torch.einsum("bk,kij->bij", weights / weights.sum(1, keepdim=True), matrices)
    rgb_to_camera = xyz_to_camera @ torch.tensor(SRGB_TO_XYZ, dtype=torch.float64)
    # Rows summing to 1 keep white white through the colour matrix.
    rgb_to_camera = rgb_to_camera / rgb_to_camera.sum(dim=2, keepdim=True)
    return {
        "ccm_weights": weights,
        "rgb_to_camera": rgb_to_camera,
        "brightness_gain": (1.0 / (0.8 + 0.1 * gain_draw)).cpu(),
        "red_gain": red.cpu(),
        "blue_gain": blue.cpu(),
        "shot_uniform": shot_uniform.cpu(),
        "read_normal": read_normal.cpu(),
    }


def _noise_levels(
    drawn: dict[str, torch.Tensor],
    shot_noise: float | None,
    read_noise: float | None,
    level: str | None,
) -> tuple[torch.Tensor, torch.Tensor, dict[str, str]]:
    """Per-image ``(shot, read)`` variances (float64, CPU) and where each came from."""
    uniform, normal = drawn["shot_uniform"], drawn["read_normal"]
    if level is not None:
        shot = torch.full_like(uniform, ISO_LIKE_LEVELS[level])
        read = torch.exp(READ_NOISE_SLOPE * torch.log(shot) + READ_NOISE_INTERCEPT)
        source = f"iso_like_level {level!r}: shot preset, read from the Brooks line (no spread)"
        return shot, read, {"shot_noise": source, "read_noise": source}
    low, high = math.log(SHOT_NOISE_RANGE[0]), math.log(SHOT_NOISE_RANGE[1])
    if shot_noise is None:
        shot = torch.exp(low + (high - low) * uniform)
        shot_source = "drawn: log-uniform on [1e-4, 0.012] (Brooks)"
    else:
        shot = torch.full_like(uniform, shot_noise)
        shot_source = "given"
    if read_noise is None:
        log_shot = torch.log(shot.clamp_min(1e-300))
        read = torch.exp(
            READ_NOISE_SLOPE * log_shot + READ_NOISE_INTERCEPT + READ_NOISE_SPREAD * normal
        )
        read = torch.where(shot > 0, read, torch.zeros_like(read))
        read_source = "drawn: Brooks line 2.18 * log(shot) + 1.20 + N(0, 0.26^2)"
    else:
        read = torch.full_like(uniform, read_noise)
        read_source = "given"
    return shot, read, {"shot_noise": shot_source, "read_noise": read_source}


def _unprocess(
    srgb: torch.Tensor,
    rgb_to_camera: torch.Tensor,
    gain: torch.Tensor,
    red: torch.Tensor,
    blue: torch.Tensor,
    masks: torch.Tensor,
) -> torch.Tensor:
    """sRGB ``(B, 3, H, W)`` -> clean raw mosaic ``(B, 1, H, W)`` in ``[0, 1]``."""
    x = srgb.clamp(0.0, 1.0)
    x = 0.5 - torch.sin(torch.asin(1.0 - 2.0 * x) / 3.0)  # inverse smoothstep
    x = x.clamp_min(1e-8) ** GAMMA
    x = torch.einsum("bij,bjhw->bihw", rgb_to_camera, x)
    ones = torch.ones_like(red)
    inverse_gains = (torch.stack([1.0 / red, ones, 1.0 / blue], dim=1) / gain[:, None])[
        ..., None, None
    ]
    grey = x.mean(dim=1, keepdim=True)
    highlight = ((grey - _HIGHLIGHT_START).clamp_min(0.0) / (1.0 - _HIGHLIGHT_START)) ** 2
    safe_gains = torch.maximum(highlight + (1.0 - highlight) * inverse_gains, inverse_gains)
    x = (x * safe_gains).clamp(0.0, 1.0)
    return (x * masks).sum(dim=1, keepdim=True)


def _process(
    raw: torch.Tensor,
    camera_to_rgb: torch.Tensor,
    gain: torch.Tensor,
    red: torch.Tensor,
    blue: torch.Tensor,
    masks: torch.Tensor,
    *,
    full_inverse: bool,
    demosaic: str,
) -> torch.Tensor:
    """Raw mosaic ``(B, 1, H, W)`` -> sRGB ``(B, 3, H, W)`` in ``[0, 1]``."""
    ones = torch.ones_like(red)
    gains = torch.stack([red, ones, blue], dim=1)
    if full_inverse:
        gains = gains * gain[:, None]
    site_gain = (masks * gains[..., None, None]).sum(dim=1, keepdim=True)
    x = (raw * site_gain).clamp(0.0, 1.0)
    x = demosaic_bilinear(x, masks) if demosaic == "bilinear" else demosaic_malvar(x, masks)
    x = torch.einsum("bij,bjhw->bihw", camera_to_rgb, x).clamp(0.0, 1.0)
    x = x.clamp_min(1e-8) ** (1.0 / GAMMA)
    if full_inverse:
        x = 3.0 * x * x - 2.0 * x * x * x  # smoothstep tone curve
    return x


def _jpeg(images: torch.Tensor, quality: int) -> torch.Tensor:
    """Round to 8 bit, JPEG-compress in memory and decode, image by image.

    The 8-bit levels go through :func:`amsnet.data.images.to_uint8` and
    :func:`amsnet.data.images.from_uint8` (float32 ``k / 255``), whatever the dtype of ``images``.
    """
    decoded = []
    for image in images:
        buffer = io.BytesIO()
        Image.fromarray(to_uint8(image)).save(buffer, format="JPEG", quality=quality)
        buffer.seek(0)
        with Image.open(buffer) as compressed:
            decoded.append(from_uint8(np.asarray(compressed.convert("RGB"))))
    return torch.stack(decoded).to(device=images.device, dtype=images.dtype)
