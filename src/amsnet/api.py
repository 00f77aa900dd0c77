"""The short public API: :func:`load`, :func:`denoise` and :func:`fit`.

``denoise`` takes an image the way you have it (numpy array, torch tensor or PIL image) and
returns the same kind; without weights it first fits a small AMSNet on the image itself
(zero-shot: no clean data, no pre-trained model).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from amsnet.build import Method
from amsnet.data.io import from_integer, rgb_to_integer
from amsnet.errors import ConfigError, ShapeError
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.methods import AMSNet
from amsnet.nets import create_net
from amsnet.runtime import prepare_for_inference, resolve_device, tune_cpu_allocator
from amsnet.training.fit import fit_images

log = logging.getLogger(__name__)

ZERO_SHOT_SETTINGS: dict[str, Any] = {
    "pd_factor_train": 2,
    "pd_factor_eval": 1,
    "mask_fill": "neighbour_mean",
}
"""AMSNet settings of a zero-shot fit: made for minutes of training on one photo (see
``docs/concepts.md``, "Zero-shot"), not the paper's hours on a dataset."""
ZERO_SHOT_BACKBONE = ("nafnet", "small")
ZERO_SHOT_STEPS = 2000
ZERO_SHOT_CROP, ZERO_SHOT_BATCH, ZERO_SHOT_LR = 64, 8, 2e-3

ImageLike = Any  # numpy (H, W[, C]) array, torch (B, C, H, W) / (C, H, W) tensor, PIL image


def load(path: str | os.PathLike[str], *, device: str = "auto") -> Method:
    """Load a ``.safetensors`` weights file for inference (see :func:`denoise`).

    Example:
        >>> method = load("model.safetensors")  # doctest: +SKIP
    """
    return load_for_inference(path, device)


def fit(
    images: ImageLike | Iterable[ImageLike],
    *,
    steps: int | None = None,
    seconds: float | None = None,
    backbone: str = ZERO_SHOT_BACKBONE[0],
    preset: str = ZERO_SHOT_BACKBONE[1],
    seed: int = 0,
    device: str = "auto",
    progress: Callable[[int, float], None] | None = None,
    **settings: Any,
) -> AMSNet:
    """Fit AMSNet on noisy images themselves (self-supervised; nothing clean is needed).

    Args:
        images: one image or several (any kind :func:`denoise` accepts, or file paths).
        steps: optimisation steps (default 2000, about two minutes on 2 CPU cores) ...
        seconds: ... or a wall-clock budget instead.
        backbone: registry name of the network.
        preset: its preset.
        seed: seeds the crops, the masks and the initial weights.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        progress: ``progress(step, loss)`` callback.
        **settings: AMSNet settings overriding :data:`ZERO_SHOT_SETTINGS`.

    Returns:
        The fitted :class:`~amsnet.AMSNet`, in eval mode on ``device``.
    """
    target = resolve_device(device)
    tune_cpu_allocator()
    noisy = [_as_float_rgb(image) for image in _as_list(images)]
    if not noisy:
        raise ConfigError("fit needs at least one image")
    torch.manual_seed(seed)
    method = AMSNet(create_net(backbone, preset=preset), **{**ZERO_SHOT_SETTINGS, **settings})
    method = method.to(target)
    if steps is None and seconds is None:
        steps = ZERO_SHOT_STEPS
    crop = _crop_for(method, noisy)
    fit_images(
        method,
        noisy,
        crop=crop,
        batch_size=ZERO_SHOT_BATCH,
        seed=seed,
        steps=steps,
        seconds=seconds,
        lr=ZERO_SHOT_LR,
        progress=progress,
    )
    return prepare_for_inference(method, target)


def denoise(
    image: ImageLike,
    weights: str | os.PathLike[str] | torch.nn.Module | None = None,
    *,
    refine: bool = False,
    seed: int = 0,
    device: str = "auto",
    tile: int | str | None = "auto",
    fit_steps: int = ZERO_SHOT_STEPS,
) -> ImageLike:
    """Denoise one image and return it in the kind it came in.

    Args:
        image: a numpy array ``(H, W)`` or ``(H, W, C)`` (uint8, uint16 or float in
            ``[0, 1]``; C = 1, 3 or 4 with alpha carried through), a torch tensor ``(B, C, H,
            W)`` or ``(C, H, W)`` float in ``[0, 1]``, or a PIL image (L, RGB, RGBA, I;16).
        weights: a weights file, an already loaded method, or ``None`` to fit a small AMSNet
            on this image first (zero-shot, ``fit_steps`` steps).
        refine: apply R3 (the "-E" variants: slower, fewer artefacts).
        seed: seeds every random choice; the same seed gives the same result.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        tile: ``"auto"`` (tiles chosen from memory), a tile size, or ``None`` (whole image).
        fit_steps: steps of the zero-shot fit when ``weights`` is ``None``.

    Returns:
        Same kind, shape and (for numpy and PIL) dtype as ``image``.

    Example:
        >>> import numpy as np
        >>> method = AMSNet(create_net("dncnn", preset="small"))
        >>> denoise(np.zeros((20, 24, 3), np.uint8), method).shape
        (20, 24, 3)
    """
    if isinstance(weights, torch.nn.Module):
        method = weights.eval()
    elif weights is not None:
        method = load_for_inference(weights, device)
    else:
        method = fit(image, steps=fit_steps, seed=seed, device=device)
    if isinstance(image, torch.Tensor):
        return _denoise_tensor(method, image, refine, seed, tile)
    pil_mode = getattr(image, "mode", None) if not isinstance(image, np.ndarray) else None
    array = np.asarray(image) if pil_mode is not None else image
    if not isinstance(array, np.ndarray):
        raise ShapeError(
            f"denoise takes a numpy array, a torch tensor or a PIL image, got "
            f"{type(image).__name__}; read files with amsnet.data.io.read_image"
        )
    result = _denoise_array(method, array, refine, seed, tile)
    if pil_mode is not None:
        from PIL import Image

        return Image.fromarray(result)
    return result


def _denoise_tensor(
    method: Method, image: torch.Tensor, refine: bool, seed: int, tile: int | str | None
) -> torch.Tensor:
    if image.ndim not in (3, 4) or not image.is_floating_point():
        raise ShapeError(
            f"a tensor image must be float (B, C, H, W) or (C, H, W) in [0, 1], got "
            f"{tuple(image.shape)} {image.dtype}"
        )
    batch = image if image.ndim == 4 else image[None]
    outputs = []
    for single in batch:
        rgb = _run(method, single.detach().cpu(), refine, seed, tile)
        outputs.append(rgb if single.shape[0] == 3 else rgb.mean(dim=0, keepdim=True))
    result = torch.stack(outputs).to(image.device, image.dtype)
    return result if image.ndim == 4 else result[0]


def _denoise_array(
    method: Method, array: np.ndarray, refine: bool, seed: int, tile: int | str | None
) -> np.ndarray:
    squeeze = array.ndim == 2
    hwc = array[..., None] if squeeze else array
    if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4):
        raise ShapeError(f"a numpy image must be (H, W) or (H, W, C), got {array.shape}")
    colour = hwc[..., :3] if hwc.shape[2] >= 3 else hwc[..., :1]
    alpha = hwc[..., colour.shape[2] :]
    if np.issubdtype(hwc.dtype, np.floating):
        source = torch.from_numpy(np.ascontiguousarray(colour, dtype=np.float32)).permute(2, 0, 1)
        out = _run(method, source, refine, seed, tile)
        restored = out if colour.shape[2] == 3 else out.mean(dim=0, keepdim=True)
        values = restored.permute(1, 2, 0).numpy().astype(hwc.dtype)
    elif hwc.dtype in (np.uint8, np.uint16):
        out = _run(method, np.ascontiguousarray(colour), refine, seed, tile)
        values = rgb_to_integer(out, colour.shape[2], 8 if hwc.dtype == np.uint8 else 16)
    else:
        raise ShapeError(f"numpy images must be uint8, uint16 or float, got {hwc.dtype}")
    result = np.concatenate([values, alpha], axis=2) if alpha.shape[2] else values
    return result[..., 0] if squeeze else result


def _run(
    method: Method, source: torch.Tensor | np.ndarray, refine: bool, seed: int, tile: Any
) -> torch.Tensor:
    height, width = (source.shape[:2]) if isinstance(source, np.ndarray) else source.shape[1:]
    plan = plan_tiles(method, int(height), int(width), refine=refine, tile=tile)
    return denoise_image(method, source, refine=refine, seed=seed, plan=plan)


def _as_list(images: Any) -> list[Any]:
    if isinstance(images, (np.ndarray, torch.Tensor, str, os.PathLike)) or hasattr(images, "mode"):
        return [images]
    return list(images)


def _as_float_rgb(image: Any) -> torch.Tensor:
    """Any accepted image kind (or a file path) -> float32 ``(3, H, W)`` in ``[0, 1]``."""
    from amsnet.data.io import as_rgb, read_image

    if isinstance(image, (str, os.PathLike)):
        return as_rgb(read_image(image).pixels)
    if isinstance(image, torch.Tensor):
        chw = image[0] if image.ndim == 4 else image
        return as_rgb(chw.detach().float().cpu()[:3])
    array = np.asarray(image)
    hwc = array[..., None] if array.ndim == 2 else array
    colour = hwc[..., :3] if hwc.shape[2] >= 3 else hwc[..., :1]
    if np.issubdtype(colour.dtype, np.floating):
        return as_rgb(torch.from_numpy(np.ascontiguousarray(colour, np.float32)).permute(2, 0, 1))
    return as_rgb(from_integer(np.ascontiguousarray(colour)))


def _crop_for(method: AMSNet, images: list[torch.Tensor]) -> int:
    """The zero-shot crop: 64 pixels (a multiple of the PD factor), smaller for tiny images."""
    factor = method.settings.pd_factor_train
    smallest = min(min(x.shape[-2:]) for x in images)
    crop = min(ZERO_SHOT_CROP, smallest) // factor * factor
    return max(crop, factor)


__all__ = ["ZERO_SHOT_SETTINGS", "denoise", "fit", "load"]
