"""Denoising images of any size: whole, or in overlapping tiles within a memory budget.

* :func:`load_for_inference`: weights file -> model on the best device, fastest memory format.
* :func:`denoise_image`: one image ``(C, H, W)`` (a float tensor, or the integer array a file
  decodes to, so that huge photos never exist as a float copy) -> the denoised float image.
  Large images are cut into tiles aligned to the PD factor and the backbone's multiple, with
  overlaps blended by a smooth window (:mod:`amsnet.ops.tiling`); the tile size is chosen from
  a memory budget and a measurement of the model's memory per pixel; on a CUDA out-of-memory
  error the tiles are halved and the image is started again.

Every random choice (masks, R3 replacements) is keyed to the absolute pixel position and the
seed (:class:`amsnet.ops.masks.PixelKey`), so a tiled result equals the untiled one except for
the backbone's behaviour at tile borders, which the blending hides, and the result is the same
on every device. (AMSNet's ``"balanced"`` partition cannot be keyed; it draws per tile.)
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from amsnet.build import Method
from amsnet.checkpoint import load_pretrained, read_header
from amsnet.data.images import rgb_region, Source, source_size
from amsnet.errors import ConfigError
from amsnet.memory import available_memory, peak_memory
from amsnet.ops.dihedral import check_transform_count, ensemble_mean
from amsnet.ops.masks import PixelKey
from amsnet.ops.strength import apply_strength, check_strength
from amsnet.ops.tiling import blend_window, Tile, tile_grid
from amsnet.precision import backbone_dtype, check_precision, precision_name, set_precision
from amsnet.runtime import prepare_for_inference, resolve_device, tune_cpu_allocator

if TYPE_CHECKING:  # pragma: no cover
    from amsnet.onnx_runtime import OnnxModel

log = logging.getLogger(__name__)

DEFAULT_OVERLAP = 64
"""Pixels shared by neighbouring tiles (the blend ramps over them)."""

CPU_MEMORY_BUDGET = 640 << 20
"""Default bytes for a tile's working memory on the CPU (640 MiB). The probe on a small tile
underestimates what a large tile really holds (allocator fragmentation): with 1 GiB a
6000x4000 photo through the paper's UNet got 320-pixel tiles and peaked at 2.17 GiB resident
(with the whole-image input, output and blend-weight buffers and the interpreter); 640 MiB
gives 256-pixel tiles and keeps it under 2 GiB (benchmarks/bench_large_image.py)."""

FALLBACK_BYTES_PER_PIXEL = 16 * 1024
"""Used where the memory per pixel cannot be measured (not Linux, not CUDA): about twice what
the paper's UNet needs."""

Progress = Callable[[int, int], None]


def load_for_inference(
    weights: str | os.PathLike[str], device: str = "auto", precision: str = "auto"
) -> Method | OnnxModel:
    """Load a weights file, or a shipped model by name (:mod:`amsnet.zoo`, checksum checked),
    on ``device`` (``auto``: CUDA, then MPS, then CPU) for inference.

    Also raises glibc's allocator thresholds on the CPU (see
    :func:`amsnet.runtime.tune_cpu_allocator`), puts the weights in the memory format that
    runs fastest there (:func:`amsnet.runtime.prepare_for_inference`) and chooses the
    backbone's precision (``auto``, ``fp32``, ``bf16``, ``fp16``; ``auto`` reads the model
    card's verdict on reduced precision, :func:`amsnet.precision.choose_precision`).

    An ``.onnx`` file (``amsnet export``) gives an :class:`amsnet.onnx_runtime.OnnxModel`,
    which runs through onnxruntime in float32 and tiles like a method.

    Raises:
        CheckpointError: the file is missing, not an amsnet weights file, or corrupt.
        ConfigError: the device is unknown or unavailable.
    """
    from amsnet.zoo import resolve_weights

    path = resolve_weights(weights)
    check_precision(precision)
    if path.suffix.lower() == ".onnx":
        return _onnx_model(path, device, precision)
    target = resolve_device(device)
    tune_cpu_allocator()
    method = load_pretrained(path, device=target)
    card = read_header(path).get("card")
    return prepare_for_inference(method, target, precision=precision, card=card)


def _onnx_model(path: Path, device: str, precision: str) -> OnnxModel:
    from amsnet.onnx_runtime import OnnxModel

    if precision not in ("auto", "fp32"):
        raise ConfigError(
            f"{path}: an ONNX graph runs in float32; drop --precision {precision} or run the "
            ".safetensors weights with PyTorch"
        )
    return OnnxModel(path, device=device)


def model_device(method: Method | OnnxModel) -> torch.device:
    """Where a model's inputs go: its parameters' device, or an ONNX model's ``device``."""
    device = getattr(method, "device", None)
    if isinstance(device, torch.device):
        return device
    return next(method.parameters()).device


def tile_alignment(method: Method | OnnxModel) -> int:
    """The multiple every tile origin and size should have: no tile then needs padding.

    The method's optional ``tile_multiple`` (:class:`amsnet.methods.base.BackboneMethod`: the
    inference PD factor times the backbone's multiple; AMSNet adds R3's PD factor; an ONNX
    model: computed from the method when it was exported), else the backbone's multiple.
    """
    declared = getattr(method, "tile_multiple", None)
    if declared is not None:
        return int(declared)
    return int(getattr(method.backbone, "size_multiple", 1))


@dataclass
class TilePlan:
    """How an image will be cut: ``tile`` is ``None`` for the whole image at once.

    ``refine_batch`` is how many R3 passes share one backbone call (``None``: the method's
    default, :func:`amsnet.ops.refine.default_passes_per_call`). Each pass holds about as much
    memory as the base pass, so all 8 (AMSNet: 8 x k = 16 images) at once would need several
    times the budget; :func:`plan_tiles` fits as many as the budget allows. Inside tiles it is
    1 unless given.
    """

    tile: int | None
    overlap: int
    align: int
    bytes_per_pixel: float
    refine_batch: int | None = None

    def __post_init__(self) -> None:
        if self.refine_batch is None and self.tile is not None:
            self.refine_batch = 1


def plan_tiles(
    method: Method,
    height: int,
    width: int,
    *,
    refine: bool = False,
    tile: int | str | None = "auto",
    overlap: int = DEFAULT_OVERLAP,
    memory_budget: int | None = None,
    bytes_per_pixel: float | None = None,
) -> TilePlan:
    """Choose the tile size for an image of ``height x width``.

    Args:
        method: the model (on its device).
        height: image height.
        width: image width.
        refine: R3 will run: inside a tile one pass per backbone call, so its memory per
            pixel is about that of the base pass; on an untiled image as many passes per call
            as the budget holds (``TilePlan.refine_batch``).
        tile: ``"auto"`` (from the budget), an integer size (rounded down to the alignment),
            or ``None``/``0`` for no tiling.
        overlap: pixels shared by neighbouring tiles.
        memory_budget: bytes a tile may use (default: 640 MiB on the CPU, 60% of the free GPU
            memory on CUDA).
        bytes_per_pixel: the model's working memory per pixel, if already measured
            (:func:`measure_bytes_per_pixel`).
    """
    align = tile_alignment(method)
    overlap = int(math.ceil(overlap / align) * align) if overlap else 0
    if tile in (None, 0):
        return TilePlan(None, overlap, align, 0.0)
    if tile != "auto":
        size = max(align, int(tile) // align * align)
        if size <= overlap:
            raise ConfigError(f"tile size {tile} must be larger than the overlap {overlap}")
        fits = size >= height and size >= width
        return TilePlan(None if fits else size, overlap, align, 0.0)
    device = model_device(method)
    cost = bytes_per_pixel or measure_bytes_per_pixel(method, refine=refine)
    budget = memory_budget or _default_budget(device)
    if height * width * cost <= budget:
        # The cost was measured with one R3 pass per call; each further pass adds about as
        # much again.
        passes_per_call = max(1, int(budget // (height * width * cost)))
        return TilePlan(None, overlap, align, cost, passes_per_call)
    side = int(math.sqrt(budget / cost)) // align * align
    side = max(side, overlap + align, 2 * align)
    return TilePlan(balanced_tile(height, width, side, overlap, align), overlap, align, cost)


def balanced_tile(height: int, width: int, largest: int, overlap: int, align: int) -> int:
    """The smallest tile (a multiple of ``align``, at most ``largest``) that covers each side
    with as few tiles as ``largest`` would.

    Tiles of the largest size the budget allows can overshoot badly: a 512x512 image whose
    budget allows 478-pixel tiles would be cut into four tiles of nearly the whole image (3.5
    times the pixels, measured 3.4 times the time with AP-BSN's R3); balanced, they are four
    tiles of 288 (1.27 times the pixels).
    """
    if largest <= overlap:
        return largest
    sizes = []
    for length in (height, width):
        count = max(1, math.ceil((length - overlap) / (largest - overlap)))
        size = math.ceil((length + (count - 1) * overlap) / count)
        sizes.append(math.ceil(size / align) * align)
    return max(align, min(largest, max(sizes)))


def measure_bytes_per_pixel(method: Method, *, refine: bool = False) -> float:
    """The model's peak working memory per input pixel, measured on a small probe tile.

    CUDA: the allocator's peak; Linux CPU: the process's peak resident size
    (:func:`amsnet.memory.peak_memory`); elsewhere :data:`FALLBACK_BYTES_PER_PIXEL`.
    Measure right after loading the model: memory freed earlier and still held by an
    allocator would hide part of the probe's need.
    """
    device = model_device(method)
    align = tile_alignment(method)
    side = max(2 * align, math.ceil(128 / align) * align)
    probe = torch.rand(1, 3, side, side, device=device)

    def run() -> None:
        method.denoise(probe, refine=refine, refine_batch=1)

    with peak_memory(device) as peak:
        run()
    if peak.bytes is None:
        return FALLBACK_BYTES_PER_PIXEL
    # Never below a floor: a probe served entirely from memory freed earlier reads as ~0.
    return max(peak.bytes / (side * side), 2048.0)


def _default_budget(device: torch.device) -> int:
    if device.type == "cuda":
        return int(0.6 * available_memory(device))
    return CPU_MEMORY_BUDGET


def denoise_image(
    method: Method,
    image: Source,
    *,
    refine: bool = False,
    seed: int = 0,
    plan: TilePlan | None = None,
    progress: Progress | None = None,
    ensemble: int = 1,
    strength: float = 1.0,
) -> torch.Tensor:
    """Denoise one image, tiled when ``plan`` says so.

    Args:
        method: the model, in eval mode on its device.
        image: float tensor ``(C, H, W)`` in ``[0, 1]`` or integer array ``(H, W, C)``
            (uint8 / uint16 as decoded from a file); ``C = 1`` (gray, processed as three equal
            channels) or 3.
        refine: apply R3.
        seed: keys every random choice (with the pixel positions).
        plan: from :func:`plan_tiles` (default: the whole image at once).
        progress: ``progress(done, total)`` after each tile.
        ensemble: average over this many flips and rotations of the image (1-8,
            :mod:`amsnet.ops.dihedral`): that many times the time, and a float copy of the
            image while it runs.
        strength: how much of the removed noise stays removed, in ``[0, 1]``
            (:mod:`amsnet.ops.strength`: ``noisy + strength * (output - noisy)``, per tile).

    Returns:
        Float32 ``(3, H, W)`` on the CPU, not clamped.
    """
    height, width = source_size(image)
    plan = plan or TilePlan(None, 0, tile_alignment(method), 0.0)
    strength = check_strength(strength)
    if check_transform_count(ensemble) > 1:
        return _self_ensemble(method, image, refine, seed, plan, progress, ensemble, strength)
    while True:
        try:
            return _denoise_tiles(
                method, image, refine, seed, plan, height, width, progress, strength
            )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            current = plan.tile or max(height, width)
            smaller = current // 2 // plan.align * plan.align
            if smaller <= max(plan.overlap, plan.align):
                raise
            log.warning(
                "CUDA out of memory with %d px tiles; retrying with %d px", current, smaller
            )
            plan = TilePlan(smaller, plan.overlap, plan.align, plan.bytes_per_pixel)


def _self_ensemble(
    method: Method,
    image: Source,
    refine: bool,
    seed: int,
    plan: TilePlan,
    progress: Progress | None,
    count: int,
    strength: float,
) -> torch.Tensor:
    # The blend with the input is linear and commutes with flips and rotations, so each
    # transformed copy is blended as it comes out.
    def one(transformed: torch.Tensor, index: int) -> torch.Tensor:
        def step(done: int, steps: int) -> None:
            if progress is not None:
                progress(index * steps + done, count * steps)

        # Tiles are square, so one plan serves the transposed copies too.
        return denoise_image(
            method,
            transformed,
            refine=refine,
            seed=seed,
            plan=plan,
            progress=step,
            strength=strength,
        )

    return ensemble_mean(one, rgb_region(image, slice(None), slice(None)), count)


def _denoise_tiles(
    method: Method,
    image: Source,
    refine: bool,
    seed: int,
    plan: TilePlan,
    height: int,
    width: int,
    progress: Progress | None,
    strength: float,
) -> torch.Tensor:
    device = model_device(method)

    keyed = bool(getattr(method, "accepts_pixel_key", True))
    generator = torch.Generator(device=device).manual_seed(seed)

    def run(region: torch.Tensor, tile: Tile) -> torch.Tensor:
        batch = region[None].to(device)
        key = PixelKey(seed, tile.top, tile.left) if keyed else None

        def call() -> torch.Tensor:
            out = method.denoise(
                batch,
                generator=generator,
                refine=refine,
                refine_batch=plan.refine_batch,
                pixel_key=key,
            )
            return out[0].float().cpu()

        out = call()
        reduced = backbone_dtype(method)
        if reduced is not None and not bool(torch.isfinite(out).all()):
            # float16 overflows where float32 does not (large activations); the image must
            # not come out with holes. Checked on the host copy: no extra device sync.
            log.warning(
                "the backbone's %s output has NaN or infinite values; the model runs in fp32 "
                "from here on (pass --precision fp32 to start so)",
                precision_name(reduced),
            )
            set_precision(method, None)
            out = call()
        # Per tile, on the host copy: the blend is linear, so blending the tiles and then
        # averaging their overlaps equals blending the averaged image, without a second
        # float copy of a large image.
        return apply_strength(out, region, strength)

    if plan.tile is None:
        whole = Tile(0, 0, height, width)
        result = run(rgb_region(image, slice(None), slice(None)), whole)
        if progress is not None:
            progress(1, 1)
        return result
    tiles = tile_grid(height, width, plan.tile, plan.overlap, plan.align)
    output = torch.zeros(3, height, width)
    weight = torch.zeros(1, height, width)
    for done, tile in enumerate(tiles, start=1):
        window = blend_window(tile, height, width, plan.overlap)
        rows = slice(tile.top, tile.top + tile.height)
        columns = slice(tile.left, tile.left + tile.width)
        output[:, rows, columns].add_(run(rgb_region(image, rows, columns), tile).mul_(window))
        weight[:, rows, columns].add_(window)
        if progress is not None:
            progress(done, len(tiles))
    return output.div_(weight)
