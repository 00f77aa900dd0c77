"""Random replacing refinement (R3; AP-BSN, CVPR 2022, section 3.4; the "-E" variants of AMSNet).

A first denoised estimate is refined by averaging ``passes`` re-denoisings of it, in each of
which a random ``ratio`` of the pixels is put back to its *noisy* value. Re-injecting real noise
at random places and averaging removes the structured artefacts (the PD checkerboard) that a
single pass leaves, at the cost of ``passes`` more network evaluations (supplement 1.4, 1.9).

The two published forms differ only in the replacement mask and in the network used:

* AP-BSN: the mask is drawn per element (each colour channel independently); the blind-spot
  network runs at full resolution on the reflect-padded image.
* AMSNet: one mask per pixel, shared over the channels; the whole masked network (new random
  partitions, all branches) runs at full resolution without PD.

Both are this function with a different ``denoise_fn`` and ``per_channel`` flag.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from amsnet.errors import ShapeError
from amsnet.ops.checks import check_bchw
from amsnet.ops.masks import coordinate_hash, PixelKey, uniform_from_hash

REFINE_CALL_PIXELS = {"cpu": 1 << 16}
"""Input pixels one R3 backbone call may hold by default, per device type (others:
:data:`REFINE_CALL_PIXELS_ACCELERATOR`). Each pass costs about the memory of the base pass, so
all 8 at once need about 8 times it: an estimated 40 GiB for the paper Restormer on one
512x512 crop. On the CPU batching passes buys no speed (one pass per call was as fast or
faster for NAFNet and Restormer on 256x256, ``benchmarks/README.md``), so only small images
share a call there."""

REFINE_CALL_PIXELS_ACCELERATOR = 1 << 18
"""The same on CUDA and MPS, where small batches leave the GPU idle between kernel launches."""


def default_passes_per_call(noisy: torch.Tensor, passes: int) -> int:
    """R3 passes per backbone call when the caller does not say: as many as keep one call
    within :data:`REFINE_CALL_PIXELS` input pixels on ``noisy``'s device, at least one, at
    most ``passes``.

    Args:
        noisy: the images to refine, ``(B, C, H, W)``.
        passes: the number of R3 passes.

    Example:
        >>> default_passes_per_call(torch.zeros(1, 3, 256, 256), 8)
        1
        >>> default_passes_per_call(torch.zeros(1, 3, 64, 64), 8)
        8
    """
    b, _, h, w = noisy.shape
    limit = REFINE_CALL_PIXELS.get(noisy.device.type, REFINE_CALL_PIXELS_ACCELERATOR)
    return max(1, min(passes, limit // max(1, b * h * w)))


def random_replace_refine(
    noisy: torch.Tensor,
    denoised: torch.Tensor,
    denoise_fn: Callable[[torch.Tensor, range], torch.Tensor],
    *,
    generator: torch.Generator | None = None,
    pixel_key: PixelKey | None = None,
    passes: int = 8,
    ratio: float = 0.16,
    per_channel: bool = False,
    passes_per_call: int | None = None,
) -> torch.Tensor:
    """Average of ``passes`` re-denoisings of ``denoised`` with random noisy pixels put back.

    The passes go through ``denoise_fn`` in batches of ``passes_per_call`` passes
    (``passes_per_call * B`` images; default :func:`default_passes_per_call`, which bounds a
    call's memory).

    The replacement masks come from ``generator`` (drawn in pass order: with a CPU generator
    and a ``denoise_fn`` that draws nothing from it, the result does not depend on
    ``passes_per_call``) or, with ``pixel_key``, from a hash of the key, the pass, the image
    number and the absolute pixel position (:func:`amsnet.ops.masks.coordinate_hash`): then it
    never depends on the chunking nor on how an image is cut into tiles.

    Args:
        noisy: noisy images ``(B, C, H, W)`` in ``[0, 1]``.
        denoised: first estimate, same shape.
        denoise_fn: ``denoise_fn(batch, passes)`` maps a batch ``(len(passes) * B, C, H, W)``
            (pass-major) to its denoised version of the same shape; ``passes`` says which
            passes the batch holds, for a network that keys its own randomness to them.
        generator: source of the replacement masks (drawn on its device).
        pixel_key: key the masks to pixel positions instead (see above).
        passes: number of re-denoisings ``T`` (8 in AP-BSN and AMSNet).
        ratio: probability that a pixel takes its noisy value (0.16 in both).
        per_channel: draw the mask per element (AP-BSN) instead of per pixel (AMSNet).
        passes_per_call: at most this many passes per ``denoise_fn`` call (default:
            :func:`default_passes_per_call`).

    Returns:
        Refined images ``(B, C, H, W)``.
    """
    check_bchw(noisy, "noisy")
    if denoised.shape != noisy.shape:
        raise ShapeError(
            f"denoised {tuple(denoised.shape)} and noisy {tuple(noisy.shape)} differ in shape"
        )
    if passes < 1:
        raise ShapeError(f"passes must be >= 1, got {passes}")
    if not 0.0 <= ratio <= 1.0:
        raise ShapeError(f"ratio must be in [0, 1], got {ratio}")
    if (generator is None) == (pixel_key is None):
        raise ShapeError("give exactly one of generator and pixel_key")
    b, c, h, w = noisy.shape
    if passes_per_call is None:
        passes_per_call = default_passes_per_call(noisy, passes)
    chunk = max(1, min(passes, passes_per_call))
    total = torch.zeros_like(denoised)
    done = 0
    while done < passes:
        n = min(chunk, passes - done)
        chosen = range(done, done + n)
        if pixel_key is not None:
            replace = _keyed_replacement(
                pixel_key, chosen, b, c if per_channel else 1, h, w, ratio, noisy.device
            )
        else:
            shape = (n, b, c if per_channel else 1, h, w)
            replace = torch.rand(shape, generator=generator, device=generator.device) < ratio
            replace = replace.to(noisy.device)
        batch = torch.where(replace, noisy.unsqueeze(0), denoised.unsqueeze(0))
        out = denoise_fn(batch.reshape(n * b, c, h, w), chosen)
        total += out.reshape(n, b, c, h, w).sum(dim=0)
        done += n
    return total / passes


def _keyed_replacement(
    pixel_key: PixelKey,
    passes: range,
    batch: int,
    channels: int,
    height: int,
    width: int,
    ratio: float,
    device: torch.device,
) -> torch.Tensor:
    """``(len(passes), batch, channels, height, width)`` replacement mask from pixel hashes."""
    streams = refine_streams(REFINE_MASK_STREAM, passes, batch, device).view(-1, batch, 1, 1, 1)
    rows, columns = pixel_key.positions(height, width, 1, device)
    channel = torch.arange(channels, device=device).view(1, 1, -1, 1, 1)
    hashed = coordinate_hash(pixel_key.key, streams, channel, rows[None], columns[None])
    return uniform_from_hash(hashed) < ratio


def refine_streams(base: int, passes: range, batch: int, device: torch.device) -> torch.Tensor:
    """Stream ids ``(len(passes) * batch,)`` of R3 pass ``t`` and image ``b``, pass-major."""
    t = torch.arange(passes.start, passes.stop, device=device).view(-1, 1)
    b = torch.arange(batch, device=device).view(1, -1)
    return (base + t * (1 << 20) + b).reshape(-1)


REFINE_MASK_STREAM = 1 << 40
"""Stream ids of R3's replacement masks (keyed mode)."""
REFINE_PARTITION_STREAM = 2 << 40
"""Stream ids of the partitions the masked network draws inside R3 (keyed mode)."""
