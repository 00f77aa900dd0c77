"""The short public API: :func:`load`, :func:`denoise`, :func:`adapt`, :func:`fit` and
:func:`distill`.

``denoise`` takes an image the way you have it (numpy array, torch tensor or PIL image) and
returns the same kind; without weights it uses the default shipped model
(:data:`amsnet.zoo.DEFAULT_MODEL`, a one-pass student). ``adapt`` fine-tunes a trained model
self-supervised on your own images (a camera the training pool never saw); ``fit`` trains a
small AMSNet from scratch on them (zero-shot: no clean data, no pre-trained model).
"""

from __future__ import annotations

import logging
import math
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
from amsnet.precision import apply_precision, check_precision
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


ADAPT_CROP, ADAPT_BATCH, ADAPT_LR = 96, 8, 2e-4
"""Test-time adaptation: crops, batch and peak learning rate (a tenth of the zero-shot fit's:
the model is already trained and should move, not start again)."""
ADAPT_REGIONS, ADAPT_REGION_SIZE = 48, 192
"""A student's adaptation re-distils it on at most this many regions of the inputs."""


def load(
    name_or_path: str | os.PathLike[str], *, device: str = "auto", precision: str = "auto"
) -> Method:
    """Load a shipped model by name (``amsnet models`` lists them) or a ``.safetensors``
    weights file, for inference (see :func:`denoise`).

    ``precision``: the backbone's (``auto``, ``fp32``, ``bf16``, ``fp16``;
    :mod:`amsnet.precision`).

    An ``.onnx`` file from :func:`amsnet.export_onnx` loads as an
    :class:`amsnet.onnx_runtime.OnnxModel` (onnxruntime, float32), which :func:`denoise`
    takes like a method.

    Example:
        >>> method = load("student-nafnet")  # doctest: +SKIP
        >>> method = load("model.safetensors")  # doctest: +SKIP
        >>> graph = load("model.onnx")  # doctest: +SKIP
    """
    return load_for_inference(name_or_path, device, precision)


def fit(
    images: ImageLike | Iterable[ImageLike],
    *,
    steps: int | None = None,
    seconds: float | None = None,
    backbone: str = ZERO_SHOT_BACKBONE[0],
    preset: str = ZERO_SHOT_BACKBONE[1],
    seed: int = 0,
    device: str = "auto",
    precision: str = "auto",
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
        precision: the backbone's while fitting and after (``auto``, ``fp32``, ``bf16``,
            ``fp16``; :mod:`amsnet.precision`).
        progress: ``progress(step, loss)`` callback.
        **settings: AMSNet settings overriding :data:`ZERO_SHOT_SETTINGS`.

    Returns:
        The fitted :class:`~amsnet.AMSNet`, in eval mode on ``device``.
    """
    check_precision(precision, "precision")
    target = resolve_device(device)
    tune_cpu_allocator()
    noisy = [_as_float_rgb(image) for image in _as_list(images)]
    if not noisy:
        raise ConfigError("fit needs at least one image")
    torch.manual_seed(seed)
    method = AMSNet(create_net(backbone, preset=preset), **{**ZERO_SHOT_SETTINGS, **settings})
    method = method.to(target)
    apply_precision(method, precision, target, flag="precision")
    if steps is None and seconds is None:
        steps = ZERO_SHOT_STEPS
    crop, fitted = _fitting_set(method, noisy)
    fit_images(
        method,
        fitted,
        crop=crop,
        batch_size=ZERO_SHOT_BATCH,
        seed=seed,
        steps=steps,
        seconds=seconds,
        lr=ZERO_SHOT_LR,
        progress=progress,
    )
    return prepare_for_inference(method, target, precision=None)  # chosen above


def denoise(
    image: ImageLike,
    weights: str | os.PathLike[str] | torch.nn.Module | None = None,
    *,
    refine: bool = False,
    seed: int = 0,
    device: str = "auto",
    tile: int | str | None = "auto",
    adapt_steps: int = 0,
    precision: str | None = None,
) -> ImageLike:
    """Denoise one image and return it in the kind it came in.

    Args:
        image: a numpy array ``(H, W)`` or ``(H, W, C)`` (uint8, uint16 or float in
            ``[0, 1]``; C = 1, 3 or 4 with alpha carried through), a torch tensor ``(B, C, H,
            W)`` or ``(C, H, W)`` float in ``[0, 1]``, or a PIL image (L, LA, RGB, RGBA,
            I;16; palette images are converted to RGB or RGBA, CMYK, YCbCr, HSV and LAB to
            RGB, and the result comes back in that mode). Float values may stray past 0 and
            1 by up to :data:`FLOAT_TOLERANCE` (noise does); NaN, infinity or a 0-255 scale
            are refused.
        weights: a shipped model's name, a weights file, an already loaded method (for
            example the result of :func:`fit`, for a zero-shot fit), or ``None`` for the
            default shipped model.
        refine: apply R3 (the "-E" variants: slower, fewer artefacts; models with masks
            only).
        seed: seeds every random choice; the same seed gives the same result.
        device: ``auto``, ``cpu``, ``cuda`` or ``mps``.
        tile: ``"auto"`` (tiles chosen from memory), a tile size, or ``None`` (whole image).
        adapt_steps: first fine-tune the model on this image for this many steps
            (:func:`adapt`; 0: no adaptation).
        precision: the backbone's (``auto``, ``fp32``, ``bf16``, ``fp16``;
            :mod:`amsnet.precision`); ``None``: ``auto`` for a model loaded here, the given
            method's own setting otherwise.

    Returns:
        Same kind, shape and (for numpy and PIL) dtype as ``image``; float results are
        clipped to ``[0, 1]``.

    Raises:
        ShapeError: an image of an unaccepted kind, shape, dtype, mode or value range.

    Example:
        >>> import numpy as np
        >>> method = AMSNet(create_net("dncnn", preset="small"))
        >>> denoise(np.zeros((20, 24, 3), np.uint8), method).shape
        (20, 24, 3)
    """
    if precision is not None:
        check_precision(precision, "precision")
    from amsnet.onnx_runtime import OnnxModel

    if isinstance(weights, OnnxModel):
        method = weights
    elif isinstance(weights, torch.nn.Module):
        method = weights.eval()
        if precision is not None:
            where = next(method.parameters()).device
            apply_precision(method, precision, where, flag="precision")
    else:
        from amsnet.zoo import DEFAULT_MODEL

        chosen = weights if weights is not None else DEFAULT_MODEL
        method = load_for_inference(chosen, device, precision or "auto")
    if refine:
        check_refinable(method)
    if adapt_steps:
        method = adapt(method, image, steps=adapt_steps, seed=seed, device=device)
    if isinstance(image, torch.Tensor):
        return _denoise_tensor(method, image, refine, seed, tile)
    is_pil = _is_pil(image)
    array = _pil_to_array(image) if is_pil else image
    if not isinstance(array, np.ndarray):
        raise ShapeError(
            f"denoise takes a numpy array, a torch tensor or a PIL image, got "
            f"{type(image).__name__}; read files with amsnet.data.io.read_image"
        )
    result = _denoise_array(method, array, refine, seed, tile)
    if is_pil:
        from PIL import Image

        return Image.fromarray(result)
    return result


def check_refinable(method: Method) -> None:
    """Raise before any work when ``method`` cannot run R3 (variant E): one-pass models have
    no masks.

    Raises:
        ConfigError: naming the model's kind and what to use instead.
    """
    from amsnet.methods import Distilled, Supervised
    from amsnet.onnx_runtime import OnnxModel

    if isinstance(method, OnnxModel):
        method.check_variant(refine=True)
    if isinstance(method, (Distilled, Supervised)):
        name = "a distilled student" if isinstance(method, Distilled) else "a supervised model"
        raise ConfigError(
            f"variant E (R3) needs a model with masks, and {name} has none; use variant B, "
            "or a teacher model (amsnet models lists them) for E"
        )


def adapt(
    method: Method,
    images: ImageLike | Iterable[ImageLike],
    *,
    steps: int,
    seed: int = 0,
    device: str = "auto",
    teacher: str | os.PathLike[str] | torch.nn.Module | None = None,
    progress: Callable[[int, float], None] | None = None,
) -> Method:
    """Fine-tune a trained model self-supervised on the noisy images themselves (test-time
    adaptation: a camera or a noise the training pool never saw). The model is copied; the
    given one is not changed.

    * AMSNet and AP-BSN: ``steps`` steps of their own training objective (L_m; AP-BSN's
      blind-spot L1) on random crops of ``images``, at a tenth of the zero-shot learning rate.
    * A distilled student has no self-supervised objective of its own: its teacher is adapted
      as above, denoises up to :data:`ADAPT_REGIONS` regions of ``images`` with R3, and the
      student is fine-tuned for ``steps`` steps to reproduce those outputs (the distillation
      recipe, on the user's own images).

    Args:
        method: the trained model (a loaded method).
        images: one image or several (any kind :func:`denoise` accepts, or file paths).
        steps: optimisation steps (of the teacher, and then of the student).
        seed: seeds the crops, masks and regions.
        device: where to train.
        teacher: a student's teacher (a name, a file or a loaded method); default: the
            shipped model its weights name (``method.settings.teacher``).
        progress: ``progress(step, loss)`` callback.

    Raises:
        ConfigError: ``steps`` below 1, no images, or a student whose teacher is unknown.
    """
    import copy

    from amsnet.methods import Distilled, Supervised

    if steps < 1:
        raise ConfigError(f"adaptation needs at least 1 step (--adapt), got {steps}")
    if isinstance(method, Supervised):
        raise ConfigError(
            "a supervised model has no self-supervised objective to adapt with; adapt an "
            "AMSNet, AP-BSN or distilled model"
        )
    noisy = [_as_float_rgb(image) for image in _as_list(images)]
    if not noisy:
        raise ConfigError("adaptation needs at least one image")
    target = resolve_device(device)
    tune_cpu_allocator()
    if isinstance(method, Distilled):
        return _adapt_student(method, noisy, steps, seed, target, teacher, progress)
    adapted = copy.deepcopy(method).to(target)
    crop, fitted = _fitting_set(adapted, noisy, ADAPT_CROP)
    fit_images(
        adapted,
        fitted,
        crop=crop,
        batch_size=ADAPT_BATCH,
        seed=seed,
        steps=steps,
        lr=ADAPT_LR,
        progress=progress,
    )
    return prepare_for_inference(adapted, target, precision=None)


def _adapt_student(
    student: Any,
    noisy: list[torch.Tensor],
    steps: int,
    seed: int,
    device: torch.device,
    teacher: Any,
    progress: Callable[[int, float], None] | None,
) -> Method:
    import copy

    from amsnet.training.distillation import plan_regions

    if teacher is None:
        teacher = student.settings.teacher
        if teacher is None:
            raise ConfigError(
                "this student's weights do not name its teacher, so it cannot be adapted; "
                "pass teacher= (the model it was distilled from)"
            )
    if not isinstance(teacher, torch.nn.Module):
        teacher = load_for_inference(teacher, str(device))
    adapted_teacher = adapt(teacher, noisy, steps=steps, seed=seed, device=str(device))
    sizes = [(int(x.shape[1]), int(x.shape[2])) for x in noisy]
    regions = plan_regions(sizes, ADAPT_REGIONS, ADAPT_REGION_SIZE, seed)
    inputs, targets = [], []
    refine = student.settings.teacher_variant == "E"
    for region in regions:
        image = noisy[region.image]
        rows = slice(region.top, region.top + region.side)
        columns = slice(region.left, region.left + region.side)
        crop = image[:, rows, columns]
        plan = plan_tiles(adapted_teacher, region.side, region.side, refine=refine, tile=None)
        output = denoise_image(
            adapted_teacher, crop, refine=refine, seed=seed + region.number, plan=plan
        )
        inputs.append(crop)
        targets.append(output.clamp(0, 1))
    adapted = copy.deepcopy(student).to(device)
    fit_images(
        adapted,
        inputs,
        crop=min(ADAPT_CROP, min(r.side for r in regions)),
        batch_size=ADAPT_BATCH,
        seed=seed,
        steps=steps,
        lr=ADAPT_LR,
        progress=progress,
        targets=targets,
    )
    return prepare_for_inference(adapted, device, precision=None)


def distill(
    teacher: str | os.PathLike[str],
    data: str | os.PathLike[str] | Iterable[str | os.PathLike[str]],
    output: str | os.PathLike[str],
    *,
    include: list[str] | None = None,
    run_dir: str | os.PathLike[str] | None = None,
    resume: bool = False,
    overwrite: bool = False,
    device: str = "auto",
    quiet: bool = True,
    overrides: Iterable[str] = (),
    **settings: Any,
) -> os.PathLike[str]:
    """Distil ``teacher`` into a one-pass student on the noisy images of ``data`` and write it
    to ``output`` (a ``.safetensors`` file with its card in the header).

    The teacher denoises ``regions`` regions of the pool once (variant E: with R3; cached in
    ``cache_dir``), then the student trains to reproduce those outputs
    (:mod:`amsnet.training.distillation`) with the trainer: checkpoints in ``run_dir``
    (default ``runs/distill``), resumable with ``resume=True``.

    Args:
        teacher: a shipped model's name or a weights file with masks (AMSNet, AP-BSN).
        data: folders of noisy images (sub-folders included).
        output: the student's weights file (refused if it exists, unless ``overwrite``).
        include: glob patterns relative to each folder of ``data`` (default: every image).
        run_dir: the run folder.
        resume: continue the run in ``run_dir``.
        overwrite: replace an existing ``output``.
        device: where the teacher and the student run.
        quiet: no progress bar.
        overrides: ``key.path=value`` settings of the experiment (as ``amsnet train --set``).
        **settings: arguments of :func:`amsnet.training.distillation.distillation_experiment`
            (``steps``, ``regions``, ``region_size``, ``net``, ``preset``, ``lr``,
            ``crop_size``, ``batch_size``, ``teacher_variant``, ``precision``,
            ``teacher_precision``, ``init_from_teacher``, ``seed``, ``cache_dir``).

    Returns:
        The path of ``output``.
    """
    from pathlib import Path

    from amsnet.atomic import check_new_output
    from amsnet.checkpoint import load_pretrained, read_header, save_pretrained
    from amsnet.config import apply_overrides, ExperimentConfig, validate
    from amsnet.training.distillation import distillation_experiment
    from amsnet.training.trainer import Trainer
    from amsnet.zoo import resolve_weights, weights_sha256

    folders = [data] if isinstance(data, (str, os.PathLike)) else list(data)
    target = check_new_output(output, overwrite=overwrite, inputs=[resolve_weights(teacher)])
    experiment = distillation_experiment(
        teacher, folders, include=include, device=device, **settings
    )
    overrides = list(overrides)
    if overrides:
        experiment = apply_overrides(experiment, overrides)
    config = validate(ExperimentConfig, experiment, "the distillation settings")
    teacher_file = resolve_weights(teacher)
    check_refinable_teacher(teacher_file)
    result = Trainer(
        config,
        run_dir=run_dir if run_dir is not None else Path("runs") / config.experiment.name,
        resume=resume,
        quiet=quiet,
    ).fit()
    if result.interrupted or result.last_path is None:
        raise ConfigError(
            f"distillation stopped at step {result.step} of {result.total_steps}; continue "
            f"with resume=True (amsnet distill ... --resume)"
        )
    student = load_pretrained(result.last_path)
    header = read_header(result.last_path)
    card = {
        "kind": "distilled student",
        "teacher": str(teacher),
        "teacher_weights_sha256": weights_sha256(teacher_file),
        "teacher_variant": config.method.teacher_variant,
        "data": {
            "root": config.data.train.root,
            "include": config.data.train.include,
            "regions": config.data.train.regions,
            "region_size": config.data.train.region_size,
        },
        "steps": result.step,
        "training_seconds": round(result.seconds, 1),
        "experiment": experiment,
    }
    save_pretrained(
        student,
        target,
        metrics=header.get("metrics"),
        source=f"amsnet distill {teacher}",
        card=card,
    )
    return target


def check_refinable_teacher(path: os.PathLike[str]) -> None:
    """A teacher must be a self-supervised model with masks (AMSNet, AP-BSN).

    Raises:
        ConfigError: the file holds a one-pass model.
    """
    from amsnet.checkpoint import read_header

    name = read_header(path)["config"]["method"]["name"]
    if name not in ("amsnet", "apbsn"):
        raise ConfigError(
            f"{path} holds a {name} model; a teacher must be an AMSNet or AP-BSN model (its "
            "variant E output is what the student learns)"
        )


def _denoise_tensor(
    method: Method, image: torch.Tensor, refine: bool, seed: int, tile: int | str | None
) -> torch.Tensor:
    if image.ndim not in (3, 4) or not image.is_floating_point():
        raise ShapeError(
            f"a tensor image must be float (B, C, H, W) or (C, H, W) in [0, 1], got "
            f"{tuple(image.shape)} {image.dtype}"
        )
    check_float_values(image, "the tensor image")
    batch = image if image.ndim == 4 else image[None]
    outputs = []
    for single in batch:
        rgb = _run(method, single.detach().cpu(), refine, seed, tile)
        outputs.append(rgb if single.shape[0] == 3 else rgb.mean(dim=0, keepdim=True))
    result = torch.stack(outputs).clamp_(0, 1).to(image.device, image.dtype)
    return result if image.ndim == 4 else result[0]


def _denoise_array(
    method: Method, array: np.ndarray, refine: bool, seed: int, tile: int | str | None
) -> np.ndarray:
    squeeze = array.ndim == 2
    hwc, colour, alpha = _split_channels(array)
    if np.issubdtype(hwc.dtype, np.floating):
        out = _run(method, _float_chw(colour), refine, seed, tile)
        restored = out if colour.shape[2] == 3 else out.mean(dim=0, keepdim=True)
        values = restored.clamp_(0, 1).permute(1, 2, 0).numpy().astype(hwc.dtype)
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
    if isinstance(images, (np.ndarray, torch.Tensor, str, os.PathLike)) or _is_pil(images):
        return [images]
    return list(images)


def _as_float_rgb(image: Any) -> torch.Tensor:
    """Any accepted image kind (or a file path) -> float32 ``(3, H, W)`` in ``[0, 1]``."""
    from amsnet.data.io import as_rgb, read_image

    if isinstance(image, (str, os.PathLike)):
        return as_rgb(read_image(image).pixels)
    if isinstance(image, torch.Tensor):
        chw = image[0] if image.ndim == 4 else image
        if chw.ndim != 3 or not chw.is_floating_point() or chw.shape[0] not in (1, 3, 4):
            raise ShapeError(
                f"a tensor image must be float (B, C, H, W) or (C, H, W), got "
                f"{tuple(image.shape)} {image.dtype}"
            )
        return check_float_values(as_rgb(chw.detach().float().cpu()[:3]), "the tensor image")
    array = _pil_to_array(image) if _is_pil(image) else np.asarray(image)
    _, colour, _ = _split_channels(array)
    if np.issubdtype(colour.dtype, np.floating):
        return as_rgb(_float_chw(colour))
    return as_rgb(from_integer(np.ascontiguousarray(colour)))


def _split_channels(array: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(H, W[, C])`` -> ``(hwc, colour, alpha)``: colour is the first 3 channels (1 for
    gray), alpha the rest (``(H, W, 0)`` when there is none)."""
    hwc = array[..., None] if array.ndim == 2 else array
    if hwc.ndim != 3 or hwc.shape[2] not in (1, 2, 3, 4) or min(hwc.shape[:2]) < 1:
        raise ShapeError(f"a numpy image must be (H, W) or (H, W, C), got {array.shape}")
    colour = hwc[..., :3] if hwc.shape[2] >= 3 else hwc[..., :1]
    return hwc, colour, hwc[..., colour.shape[2] :]


def _float_chw(colour: np.ndarray) -> torch.Tensor:
    """A float ``(H, W, C)`` array as a checked float32 ``(C, H, W)`` tensor."""
    chw = torch.from_numpy(np.ascontiguousarray(colour, np.float32)).permute(2, 0, 1)
    return check_float_values(chw, "the float array")


FLOAT_TOLERANCE = 1.0
"""How far float pixel values may lie outside ``[0, 1]``: noise pushes values past 0 and 1
(an unclipped synthetic noisy image), but a value beyond ``[-1, 2]`` means another scale
(0-255 floats) and would be denoised as nonsense."""


def check_float_values(pixels: torch.Tensor, what: str) -> torch.Tensor:
    """Refuse float pixels that are not finite or not on the ``[0, 1]`` scale.

    Args:
        pixels: float tensor of any shape.
        what: the input's description, for the message.

    Returns:
        ``pixels``.

    Raises:
        ShapeError: NaN or infinite values, or values beyond ``[-FLOAT_TOLERANCE,
            1 + FLOAT_TOLERANCE]``.
    """
    if pixels.numel() == 0:
        raise ShapeError(f"{what} is empty (shape {tuple(pixels.shape)})")
    low, high = torch.aminmax(pixels.detach())
    low, high = float(low), float(high)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ShapeError(f"{what} holds NaN or infinite values; replace them before denoising")
    if low < -FLOAT_TOLERANCE or high > 1 + FLOAT_TOLERANCE:
        hint = " (it looks like 0-255: divide by 255)" if high <= 255 + FLOAT_TOLERANCE else ""
        raise ShapeError(
            f"{what} has values in [{low:g}, {high:g}]; float images must lie in [0, 1]{hint}"
        )
    return pixels


# PIL modes and what they are converted to on the way in (the result comes back in it).
_PIL_CONVERSIONS = {
    "1": "L",
    "P": "RGB",
    "PA": "RGBA",
    "CMYK": "RGB",
    "YCbCr": "RGB",
    "HSV": "RGB",
    "LAB": "RGB",
    "RGBX": "RGB",
    "RGBa": "RGBA",
    "La": "LA",
}
_PIL_KEPT = ("L", "LA", "RGB", "RGBA", "I;16", "I;16B", "I;16L")


def _is_pil(image: Any) -> bool:
    return type(image).__module__.startswith("PIL.") and hasattr(image, "mode")


def _pil_to_array(image: Any) -> np.ndarray:
    """A PIL image's pixels as a uint8/uint16 array; other modes are converted (logged).

    Palette images become RGB (RGBA with transparency), CMYK, YCbCr, HSV and LAB become RGB:
    denoising palette indices or the K channel would return nonsense.

    Raises:
        ShapeError: 32-bit integer or float modes (``I``, ``F``), whose scale is unknown.
    """
    mode = image.mode
    if mode not in _PIL_KEPT:
        target = _PIL_CONVERSIONS.get(mode)
        if mode == "P" and "transparency" in image.info:
            target = "RGBA"
        if target is None:
            raise ShapeError(
                f"PIL images in mode {mode!r} are not accepted (their value range is unknown); "
                "convert to 'RGB', 'L' or 'I;16', or pass a float array in [0, 1]"
            )
        log.info("a PIL image in mode %s is denoised and returned as %s", mode, target)
        image = image.convert(target)
    array = np.asarray(image)
    return array.astype(np.uint16) if array.dtype.kind in "iu" and array.itemsize > 1 else array


MIN_FIT_SIDE = 16
"""Images with a side below this (pixels) take no part in fitting or adaptation: a crop that
small teaches a network nothing about the rest."""


def _fitting_set(
    method: Method, images: list[torch.Tensor], size: int = ZERO_SHOT_CROP
) -> tuple[int, list[torch.Tensor]]:
    """The crop side for fitting ``method`` on ``images`` and the images that take part.

    The crop is ``size`` pixels (a multiple of the training PD factor, 1 without PD), smaller
    only when every image is; images smaller than the crop are left out of fitting (with a
    warning; they are still denoised), so one thumbnail among photos cannot shrink the crop
    of all of them.

    Raises:
        ConfigError: every image has a side below :data:`MIN_FIT_SIDE`.
    """
    factor = int(getattr(method.settings, "pd_factor_train", 1))
    usable = [x for x in images if min(x.shape[-2:]) >= max(MIN_FIT_SIDE, factor)]
    if not usable:
        widest = max(min(x.shape[-2:]) for x in images)
        raise ConfigError(
            f"every image has a side below {MIN_FIT_SIDE} px (the largest short side is "
            f"{widest} px): too small to fit or adapt a model on; give larger images"
        )
    largest = max(min(x.shape[-2:]) for x in usable)
    crop = max(min(size, largest) // factor * factor, factor)
    kept = [x for x in usable if min(x.shape[-2:]) >= crop]
    if len(kept) < len(images):
        log.warning(
            "%d of %d images are smaller than the %d px fitting crop and take no part in "
            "fitting (they are still denoised)",
            len(images) - len(kept),
            len(images),
            crop,
        )
    return crop, kept


__all__ = ["ZERO_SHOT_SETTINGS", "adapt", "denoise", "distill", "fit", "load"]
