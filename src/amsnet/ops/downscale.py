"""Box downscaling: the resize that keeps a noisy/clean pair exact.

Averaging each ``f x f`` block is linear, so the block means of a clean image are the ground
truth of the block means of its noisy version: the pair stays a pair at the lower resolution,
with content sharper per pixel and noise weaker and less correlated, as in a photo shrunk for
the web. Used by the training crops' scale augmentation
(:class:`amsnet.data.training_crops.TrainingCrops`, ``downscale_factors``) and by the
downscaled evaluation of ``benchmarks/zoo_quality.py --downscale``.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def box_downscale(pixels: torch.Tensor, factor: int, *, levels: int | None = None) -> torch.Tensor:
    """The mean of each ``factor x factor`` block.

    Args:
        pixels: ``(C, H, W)`` or ``(B, C, H, W)`` floats in ``[0, 1]``; rows and columns past
            the last whole block are dropped.
        factor: block side, at least 1 (1 returns ``pixels`` itself).
        levels: round the result to ``k / levels`` (255 for 8-bit images), as a resized photo
            saved again would be; ``None`` keeps it unrounded (a ground truth).

    Returns:
        ``(C, H // factor, W // factor)`` or ``(B, C, H // factor, W // factor)``.
    """
    if factor == 1:
        return pixels
    batched = pixels if pixels.dim() == 4 else pixels.unsqueeze(0)
    small = F.avg_pool2d(batched, factor)
    if levels is not None:
        small = torch.round(small * levels) / levels
    return small if pixels.dim() == 4 else small.squeeze(0)
