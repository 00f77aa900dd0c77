"""Bayer mosaics: the colour sites of the 2x2 filter patterns, and demosaicking.

:func:`bayer_masks` gives the R, G and B sites of a pattern (:data:`BAYER_PATTERNS`);
:func:`demosaic_bilinear` (the one of Brooks et al.'s unprocessing pipeline) and
:func:`demosaic_malvar` (Malvar, He, Cutler, ICASSP 2004: gradient-corrected bilinear, as
MATLAB's ``demosaic``) rebuild three colour planes from a one-channel mosaic
(:data:`DEMOSAIC_METHODS`). :func:`amsnet.data.camera_noise.camera_noise` uses them to give
synthetic noise the spatial correlation of real camera noise.

Mosaics are float ``(B, 1, H, W)`` with even ``H`` and ``W``; masks are ``(1, 3, H, W)`` of 0
and 1; demosaicked images are ``(B, 3, H, W)`` of the mosaic's dtype and device.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

BAYER_PATTERNS: tuple[str, ...] = ("rggb", "grbg", "gbrg", "bggr")
"""Colour filter layouts, the 2x2 tile read row by row."""

DEMOSAIC_METHODS: tuple[str, ...] = ("bilinear", "malvar")
"""The demosaicking methods: :func:`demosaic_bilinear` and :func:`demosaic_malvar`."""


def bayer_masks(
    pattern: str, height: int, width: int, *, device: torch.device, dtype: torch.dtype
) -> torch.Tensor:
    """``(1, 3, H, W)`` 0/1 masks of the R, G and B sites of a Bayer mosaic.

    Args:
        pattern: one of :data:`BAYER_PATTERNS`.
        height: mosaic height, even.
        width: mosaic width, even.
        device: where the masks go.
        dtype: their floating-point dtype.

    Example:
        >>> bayer_masks("rggb", 2, 2, device=torch.device("cpu"), dtype=torch.float32)[0, :, 0]
        tensor([[1., 0.],
                [0., 1.],
                [0., 0.]])
    """
    tile = torch.zeros(3, 2, 2, dtype=dtype)
    for position, colour in enumerate(pattern):
        tile["rgb".index(colour), position // 2, position % 2] = 1.0
    return tile.repeat(1, height // 2, width // 2).unsqueeze(0).to(device)


def demosaic_bilinear(raw: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Bilinear demosaic of ``(B, 1, H, W)`` (even sizes) with ``(1, 3, H, W)`` site masks.

    Each colour plane keeps its samples and zeros elsewhere; R and B are filtered with the
    tent kernel ``[1 2 1]^T [1 2 1] / 4`` and G with the cross ``[[0 1 0] [1 4 1] [0 1 0]] / 4``,
    which average the 2 or 4 nearest samples of that colour and keep the samples themselves.
    The one-pixel border comes from reflection, which maps a row or column onto one of the
    same parity and so keeps the Bayer layout.
    """
    sparse = F.pad(raw * masks, (1, 1, 1, 1), mode="reflect")
    tent = torch.tensor([[1.0, 2.0, 1.0], [2.0, 4.0, 2.0], [1.0, 2.0, 1.0]]) / 4.0
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 4.0, 1.0], [0.0, 1.0, 0.0]]) / 4.0
    kernels = torch.stack([tent, cross, tent]).unsqueeze(1).to(raw.device, raw.dtype)
    return F.conv2d(sparse, kernels, groups=3)


def demosaic_malvar(raw: torch.Tensor, masks: torch.Tensor) -> torch.Tensor:
    """Malvar-He-Cutler (ICASSP 2004) demosaic of ``(B, 1, H, W)`` with ``(1, 3, H, W)`` masks.

    Bilinear interpolation corrected by the Laplacian of the channel sampled at the pixel: four
    fixed 5x5 filters on the mosaic (green at a red/blue site; red or blue at a green site whose
    row, respectively column, holds that colour; red at blue and blue at red), each chosen by
    site. The two-pixel border comes from reflection, which keeps the Bayer layout.
    """
    padded = F.pad(raw, (2, 2, 2, 2), mode="reflect")
    green_at_red_blue = [
        [0, 0, -1, 0, 0],
        [0, 0, 2, 0, 0],
        [-1, 2, 4, 2, -1],
        [0, 0, 2, 0, 0],
        [0, 0, -1, 0, 0],
    ]
    along_row = [
        [0, 0, 0.5, 0, 0],
        [0, -1, 0, -1, 0],
        [-1, 4, 5, 4, -1],
        [0, -1, 0, -1, 0],
        [0, 0, 0.5, 0, 0],
    ]
    diagonal = [
        [0, 0, -1.5, 0, 0],
        [0, 2, 0, 2, 0],
        [-1.5, 0, 6, 0, -1.5],
        [0, 2, 0, 2, 0],
        [0, 0, -1.5, 0, 0],
    ]
    row = torch.tensor(along_row)
    kernels = torch.stack([torch.tensor(green_at_red_blue), row, row.T, torch.tensor(diagonal)])
    kernels = (kernels / 8.0).unsqueeze(1).to(raw.device, raw.dtype)
    green_estimate, row_estimate, column_estimate, diagonal_estimate = F.conv2d(
        padded, kernels
    ).unbind(1)
    red_site, green_site, blue_site = masks[:, 0], masks[:, 1], masks[:, 2]
    # A green site lies in a red row when its left or right neighbour is red.
    red_row = (red_site + torch.roll(red_site, 1, dims=-1)).clamp(max=1.0)
    green_in_red_row = green_site * red_row
    green_in_blue_row = green_site * (1.0 - red_row)
    mosaic = raw[:, 0]
    red = (
        red_site * mosaic
        + green_in_red_row * row_estimate
        + green_in_blue_row * column_estimate
        + blue_site * diagonal_estimate
    )
    green = green_site * mosaic + (1.0 - green_site) * green_estimate
    blue = (
        blue_site * mosaic
        + green_in_blue_row * row_estimate
        + green_in_red_row * column_estimate
        + red_site * diagonal_estimate
    )
    return torch.stack([red, green, blue], dim=1)
