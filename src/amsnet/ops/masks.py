"""Random mask partitions: which of the ``k`` branches hides each pixel.

AMSNet (supplement section 1.2 and Eq. 5) splits the pixels of every PD sub-image into ``k``
disjoint sets. A partition is stored as an *assignment*: an integer tensor ``(N, 1, H, W)``
whose value at a pixel is the index of the set it belongs to. The singleton channel dimension
is deliberate: a pixel is hidden or visible in all colour channels together, because real
noise is correlated across channels and a visible green value would leak the hidden red one.

Two ways to draw it:

* ``"uniform"``: every pixel independently uniform in ``0..k-1`` (the official code's
  ``MultiScaleMask``). Set sizes fluctuate around ``n / k``.
* ``"balanced"``: each sub-image's ``n`` pixels go ``floor(n / k)`` or ``ceil(n / k)`` to every
  set, uniformly at random among such splits, and which sets get the extra pixels is random
  too ("as evenly and randomly as possible", supplement section 1.2).

All randomness comes from an explicit :class:`torch.Generator`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import torch
import torch.nn.functional as F

from amsnet.errors import ShapeError

PartitionMode = Literal["uniform", "balanced"]
PARTITION_MODES: tuple[str, ...] = ("uniform", "balanced")
MaskFill = Literal["zero", "neighbour_mean"]
MASK_FILLS: tuple[str, ...] = ("zero", "neighbour_mean")


def random_partition(
    num_images: int,
    height: int,
    width: int,
    num_parts: int,
    *,
    generator: torch.Generator,
    mode: PartitionMode = "uniform",
    device: torch.device | str | None = None,
) -> torch.Tensor:
    """Draw a random partition of every image's pixels into ``num_parts`` disjoint sets.

    Args:
        num_images: number of (sub-)images ``N``; each gets its own partition.
        height: image height ``H``.
        width: image width ``W``.
        num_parts: number of sets ``k`` >= 2 (AMSNet's number of masks / branches).
        generator: source of randomness; the draw happens on its device.
        mode: ``"uniform"`` or ``"balanced"`` (see the module docstring).
        device: where the result lives (default: the generator's device).

    Returns:
        Assignment ``(N, 1, H, W)`` of dtype ``int64`` with values in ``[0, k)``.

    Example:
        >>> g = torch.Generator().manual_seed(0)
        >>> a = random_partition(2, 3, 3, 2, generator=g, mode="balanced")
        >>> a.shape, sorted(torch.bincount(a[0].flatten()).tolist())
        (torch.Size([2, 1, 3, 3]), [4, 5])
    """
    if num_parts < 2:
        raise ShapeError(f"a partition needs num_parts >= 2, got {num_parts}")
    if min(num_images, height, width) < 0:
        raise ShapeError(f"invalid partition shape {(num_images, height, width)}")
    source = generator.device
    if mode == "uniform":
        assignment = torch.randint(
            0, num_parts, (num_images, 1, height, width), generator=generator, device=source
        )
    elif mode == "balanced":
        n = height * width
        # A uniformly random permutation of 0..n-1 taken modulo k gives every set floor or
        # ceil of n/k pixels; the random offset decides which sets receive the extra ones.
        order = torch.rand(num_images, n, generator=generator, device=source).argsort(dim=1)
        offset = torch.randint(0, num_parts, (num_images, 1), generator=generator, device=source)
        assignment = ((order + offset) % num_parts).view(num_images, 1, height, width)
    else:
        raise ShapeError(f"unknown partition mode {mode!r}; choose one of {PARTITION_MODES}")
    return assignment.to(device) if device is not None else assignment


def hidden_masks(assignment: torch.Tensor, num_parts: int) -> torch.Tensor:
    """One boolean mask per set: ``masks[i] = (assignment == i)``.

    Args:
        assignment: ``(N, 1, H, W)`` integers in ``[0, k)``.
        num_parts: ``k``.

    Returns:
        ``(k, N, 1, H, W)`` booleans; for every pixel exactly one of the ``k`` masks is True.
    """
    parts = torch.arange(num_parts, device=assignment.device).view(-1, 1, 1, 1, 1)
    return assignment.unsqueeze(0) == parts


def hide(images: torch.Tensor, visible: torch.Tensor, fill: MaskFill = "zero") -> torch.Tensor:
    """Replace the hidden pixels of ``images`` by a value that does not depend on them.

    * ``"zero"``: hidden pixels become 0 (the paper and the official code).
    * ``"neighbour_mean"``: hidden pixels become the mean of the *visible* pixels among their
      8 neighbours. The backbone then starts from a plausible value instead of a black hole,
      which makes short trainings converge much faster; a hidden pixel's own value is still
      never used, so the scheme stays blind to its noise. Where none of the 8 is visible
      (1 hidden pixel in 256 with k = 2, more at borders) the mean of the visible pixels of
      the 5x5 window is used, and where none of those is either, the mean of the image's
      visible pixels: a 0 there showed as dark dots in the output of briefly trained models.

    Args:
        images: ``(N, C, H, W)``.
        visible: ``(N, 1, H, W)`` booleans, True where a pixel is shown.
        fill: ``"zero"`` or ``"neighbour_mean"``.

    Returns:
        ``(N, C, H, W)``: visible pixels unchanged, hidden ones filled.
    """
    kept = images * visible
    if fill == "zero":
        return kept
    if fill != "neighbour_mean":
        raise ShapeError(f"unknown mask fill {fill!r}; choose one of {MASK_FILLS}")
    c = images.shape[1]
    shown = visible.to(images.dtype)
    # The window's centre is the hidden pixel itself, which is 0 in `kept` and in `shown`.
    fill = kept.sum((2, 3), keepdim=True) / shown.sum((2, 3), keepdim=True).clamp_min(1)
    # The window sums of the kept values and of the visible count in one depthwise
    # convolution per window, channels-last: oneDNN's depthwise kernel for a handful of
    # channels is about 10x slower in the default layout (2x4x512x512, both windows: 93 ms
    # as four convolutions there, 4.8 ms here on 2 CPU cores; a quarter of AMSNet B's time
    # with the small NAFNet).
    stacked = torch.cat([kept, shown], 1).contiguous(memory_format=torch.channels_last)
    for side in (5, 3):  # the nearest window with a visible pixel wins
        window = torch.ones(c + 1, 1, side, side, device=images.device, dtype=images.dtype)
        sums = F.conv2d(stacked, window, padding=side // 2, groups=c + 1)
        total, count = sums[:, :c], sums[:, c:]
        fill = torch.where(count > 0, total / count.clamp_min(1), fill)
    return torch.where(visible, kept, fill)


# -- masks keyed to pixel positions ---------------------------------------------------------

_MIX_1 = -49064778989728563  # 0xff51afd7ed558ccd as a signed 64-bit integer
_MIX_2 = -4265267296055464877  # 0xc4ceb9fe1a85ec53
_LOW_31 = (1 << 31) - 1
_LOW_62 = (1 << 62) - 1


def _mix(x: torch.Tensor) -> torch.Tensor:
    # MurmurHash3's 64-bit finaliser; the masks after the shifts make them logical shifts
    # (torch shifts signed integers arithmetically) and products wrap around modulo 2**64.
    x = x ^ ((x >> 33) & _LOW_31)
    x = x * _MIX_1
    x = x ^ ((x >> 33) & _LOW_31)
    x = x * _MIX_2
    return x ^ ((x >> 33) & _LOW_31)


def coordinate_hash(key: int, *coordinates: torch.Tensor) -> torch.Tensor:
    """Pseudo-random 62-bit integers that depend only on ``key`` and the coordinates.

    The coordinates (int64 tensors, broadcast together) are folded in one after the other
    through a 64-bit mixing function, so equal keys and coordinates give equal values on any
    device and in any batch layout.

    Returns:
        int64 tensor of the broadcast shape, values in ``[0, 2**62)``.

    Example:
        >>> a = coordinate_hash(7, torch.arange(3))
        >>> torch.equal(a[1:], coordinate_hash(7, torch.arange(1, 3)))
        True
    """
    device = coordinates[0].device if coordinates else None
    h = _mix(torch.tensor(int(key) & ((1 << 63) - 1), dtype=torch.int64, device=device))
    for coordinate in coordinates:
        h = _mix(h ^ coordinate.to(torch.int64))
    return h & _LOW_62


def uniform_from_hash(hashed: torch.Tensor) -> torch.Tensor:
    """Map :func:`coordinate_hash` values to uniform floats in ``[0, 1)`` (float64)."""
    return (hashed >> 9).to(torch.float64) * 2.0**-53


@dataclass(frozen=True)
class PixelKey:
    """Randomness keyed to absolute pixel positions (for tiled inference).

    With a ``PixelKey`` the mask of a pixel depends on ``key``, its position in the whole
    image (``top``/``left`` give the tile's origin) and a per-use stream, never on the tile
    it was processed in: a tiled result then equals the untiled one except for the
    backbone's border effects. Only the ``"uniform"`` partition can be keyed this way (a
    balanced split needs the whole sub-image at once).
    """

    key: int
    top: int = 0
    left: int = 0

    def positions(
        self, height: int, width: int, factor: int, device: torch.device
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Absolute ``(rows, columns)`` of the pixels of PD sub-images.

        For sub-images of stride ``factor`` with ``height x width`` pixels, sub-image
        ``(i, j)`` pixel ``(y, x)`` sits at row ``top + y * factor + i``, column
        ``left + x * factor + j``.

        Returns:
            ``rows`` ``(f*f, 1, height, 1)`` and ``columns`` ``(f*f, 1, 1, width)``, int64.
        """
        phase = torch.arange(factor, device=device)
        i = phase.repeat_interleave(factor).view(-1, 1, 1, 1)
        j = phase.repeat(factor).view(-1, 1, 1, 1)
        y = torch.arange(height, device=device).view(1, 1, -1, 1)
        x = torch.arange(width, device=device).view(1, 1, 1, -1)
        return self.top + y * factor + i, self.left + x * factor + j


def keyed_partition(
    pixel_key: PixelKey,
    streams: torch.Tensor,
    height: int,
    width: int,
    num_parts: int,
    factor: int,
) -> torch.Tensor:
    """A uniform partition of PD sub-images keyed to pixel positions.

    Args:
        pixel_key: the key and the tile's origin.
        streams: ``(B,)`` int64 ids of the images of the batch (image number, R3 pass, ...):
            different streams get independent partitions.
        height: sub-image height.
        width: sub-image width.
        num_parts: ``k``.
        factor: the PD stride the sub-images came from.

    Returns:
        Assignment ``(B * factor**2, 1, height, width)`` in the batch layout of
        :func:`amsnet.ops.pixel_shuffle.pd_down`.
    """
    device = streams.device
    rows, columns = pixel_key.positions(height, width, factor, device)
    hashed = coordinate_hash(pixel_key.key, streams.view(-1, 1, 1, 1, 1), rows[None], columns[None])
    return (hashed % num_parts).reshape(-1, 1, height, width)
