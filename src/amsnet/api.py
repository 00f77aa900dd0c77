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
import os
from collections.abc import Callable, Iterable
from typing import Any

import numpy as np
import torch

from amsnet.build import Method, METHODS
from amsnet.data.images import (
    as_float_rgb,
    is_pil,
    numpy_result,
    numpy_source,
    pil_to_array,
    tensor_result,
    tensor_sources,
)
from amsnet.data.io import read_image
from amsnet.errors import ConfigError, ShapeError
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.methods import AMSNet
from amsnet.methods.base import adaptation_of, description_of, is_refinable
from amsnet.nets import create_net
from amsnet.ops.dihedral import check_transform_count
from amsnet.ops.strength import check_strength
from amsnet.precision import check_precision, choose_precision, set_precision
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
ADAPT_REGIONS, ADAPT_REGION_SIZE = 64, 192
"""A student's adaptation re-distils it on at most this many regions of the inputs."""
ADAPT_STUDENT_LR = 1e-3
"""Peak learning rate of a student's re-distillation on the inputs. Chosen on CC15 (all 15
photos, the shipped student, 2 cores; docs/models.md, "Test-time adaptation"): 2e-4, 5e-4 and
1e-3 gave 35.62, 35.64 and 35.64 dB after 600 steps; 1e-3 with 800 steps on 64 regions
35.66."""


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
    noisy = [_float_rgb(image) for image in _as_list(images)]
    if not noisy:
        raise ConfigError("fit needs at least one image")
    torch.manual_seed(seed)
    method = AMSNet(create_net(backbone, preset=preset), **{**ZERO_SHOT_SETTINGS, **settings})
    method = method.to(target)
    set_precision(method, choose_precision(method, precision, target, flag="precision"))
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
    ensemble: int = 1,
    strength: float = 1.0,
) -> ImageLike:
    """Denoise one image and return it in the kind it came in.

    Args:
        image: a numpy array ``(H, W)`` or ``(H, W, C)`` (uint8, uint16 or float in
            ``[0, 1]``; C = 1, 3 or 4 with alpha carried through), a torch tensor ``(B, C, H,
            W)`` or ``(C, H, W)`` float in ``[0, 1]``, or a PIL image (L, LA, RGB, RGBA,
            I;16; palette images are converted to RGB or RGBA, CMYK, YCbCr, HSV and LAB to
            RGB, and the result comes back in that mode). Float values may stray past 0 and
            1 by up to :data:`amsnet.data.images.FLOAT_TOLERANCE` (noise does); NaN,
            infinity or a 0-255 scale are refused.
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
        ensemble: average over this many flips and rotations of the image (1 to 8,
            :mod:`amsnet.ops.dihedral`): that many times the time, for a little more quality
            (+0.05 dB for the default model on CC15 with 8).
        strength: how much of the noise the model found to take away, from 0 (none: the
            input) to 1 (all: the model's output); ``noisy + strength * (output - noisy)``
            (:mod:`amsnet.ops.strength`). Below 1 for photos where the model removes detail
            with the noise (docs/models.md, "Strength").

    Returns:
        Same kind, shape and (for numpy and PIL) dtype as ``image``; float results are
        clipped to ``[0, 1]``.

    Raises:
        ShapeError: an image of an unaccepted kind, shape, dtype, mode or value range.
        ConfigError: ``ensemble`` outside 1-8, ``strength`` outside 0-1, or an unknown
            ``precision``.

    Example:
        >>> import numpy as np
        >>> method = AMSNet(create_net("dncnn", preset="small"))
        >>> denoise(np.zeros((20, 24, 3), np.uint8), method).shape
        (20, 24, 3)
    """
    if precision is not None:
        check_precision(precision, "precision")
    check_transform_count(ensemble, "ensemble")
    check_strength(strength, "strength")
    from amsnet.onnx_runtime import OnnxModel

    if isinstance(weights, OnnxModel):
        method = weights
    elif isinstance(weights, torch.nn.Module):
        method = weights.eval()
        if precision is not None:
            where = next(method.parameters()).device
            set_precision(method, choose_precision(method, precision, where, flag="precision"))
    else:
        from amsnet.zoo import DEFAULT_MODEL

        chosen = weights if weights is not None else DEFAULT_MODEL
        method = load_for_inference(chosen, device, precision or "auto")
    if refine:
        check_refinable(method)
    if adapt_steps:
        method = adapt(method, image, steps=adapt_steps, seed=seed, device=device)
    if isinstance(image, torch.Tensor):
        outputs = [
            _run(method, single, refine, seed, tile, ensemble, strength)
            for single in tensor_sources(image)
        ]
        return tensor_result(outputs, image)
    array = pil_to_array(image) if is_pil(image) else image
    if not isinstance(array, np.ndarray):
        raise ShapeError(
            f"denoise takes a numpy array, a torch tensor or a PIL image, got "
            f"{type(image).__name__}; read files with amsnet.data.io.read_image"
        )
    result = numpy_result(
        _run(method, numpy_source(array), refine, seed, tile, ensemble, strength), array
    )
    if is_pil(image):
        from PIL import Image

        return Image.fromarray(result)
    return result


def check_refinable(method: Method) -> None:
    """Raise before any work when ``method`` cannot run R3 (variant E): one-pass models have
    no masks.

    The method's class declares it (``refinable``, :func:`amsnet.methods.base.is_refinable`);
    an ONNX graph holds one variant only.

    Raises:
        ConfigError: naming the model's kind and what to use instead.
    """
    from amsnet.onnx_runtime import OnnxModel

    if isinstance(method, OnnxModel):
        method.check_variant(refine=True)
    elif not is_refinable(method):
        raise ConfigError(
            f"variant E (R3) needs a model with masks, and {description_of(method)} has none; "
            "use variant B, or a teacher model (amsnet models lists them) for E"
        )


def adapt(
    method: Method,
    images: ImageLike | Iterable[ImageLike],
    *,
    steps: int,
    seed: int = 0,
    device: str = "auto",
    teacher: str | os.PathLike[str] | torch.nn.Module | None = None,
    teacher_steps: int = 0,
    progress: Callable[[int, float], None] | None = None,
) -> Method:
    """Fine-tune a trained model self-supervised on the noisy images themselves (test-time
    adaptation: a camera or a noise the training pool never saw). The model is copied; the
    given one is not changed.

    What happens is what the method's class declares (``adaptation``,
    :func:`amsnet.methods.base.adaptation_of`):

    * ``"objective"`` (AMSNet, AP-BSN, any self-supervised method): ``steps`` steps of its own
      training objective (L_m; AP-BSN's blind-spot L1) on random crops of ``images``, at a
      tenth of the zero-shot learning rate.
    * ``"teacher"`` (a distilled student, which has no self-supervised objective of its own):
      its teacher (first adapted as above for ``teacher_steps`` steps, if any) denoises up to
      :data:`ADAPT_REGIONS` regions of ``images`` with R3, and the student is fine-tuned for
      ``steps`` steps to reproduce those outputs (the distillation recipe, on the user's own
      images, at :data:`ADAPT_STUDENT_LR`). The teacher is not adapted by default: on CC15
      adapting it did not raise its own output (35.37 to 35.38 dB) and took half the time.
    * ``None`` (a supervised model): refused.

    Args:
        method: the trained model (a loaded method).
        images: one image or several (any kind :func:`denoise` accepts, or file paths).
        steps: optimisation steps (of the student, for a student).
        seed: seeds the crops, masks and regions.
        device: where to train.
        teacher: a student's teacher (a name, a file or a loaded method); default: the
            shipped model its weights name (``method.settings.teacher``).
        teacher_steps: a student's teacher is first adapted for this many steps (0: used as
            it is); refused for a model that is not a student.
        progress: ``progress(step, loss)`` callback.

    Raises:
        ConfigError: ``steps`` below 1, ``teacher_steps`` below 0 or given for a model that
            is not a student, no images, a method that declares no adaptation, or a student
            whose teacher is unknown.
    """
    if steps < 1:
        raise ConfigError(f"adaptation needs at least 1 step (--adapt), got {steps}")
    if teacher_steps < 0:
        raise ConfigError(
            f"teacher_steps (--adapt-teacher) must be 0 or more steps, got {teacher_steps}"
        )
    how = adaptation_of(method)
    if how is None:
        raise ConfigError(
            f"{description_of(method)} has no self-supervised objective to adapt with; adapt "
            "an AMSNet, AP-BSN or distilled model"
        )
    if teacher_steps and how != "teacher":
        raise ConfigError(
            f"teacher_steps (--adapt-teacher) adapts a student's teacher, and "
            f"{description_of(method)} has none; use steps (--adapt) alone"
        )
    noisy = [_float_rgb(image) for image in _as_list(images)]
    if not noisy:
        raise ConfigError("adaptation needs at least one image")
    target = resolve_device(device)
    tune_cpu_allocator()
    if how == "teacher":
        return _adapt_student(method, noisy, steps, teacher_steps, seed, target, teacher, progress)
    crop, fitted = _fitting_set(method, noisy, ADAPT_CROP)
    return _fine_tuned(method, fitted, crop, steps, seed, target, progress)


def _fine_tuned(
    method: Method,
    images: list[torch.Tensor],
    crop: int,
    steps: int,
    seed: int,
    device: torch.device,
    progress: Callable[[int, float], None] | None,
    targets: list[torch.Tensor] | None = None,
    lr: float = ADAPT_LR,
) -> Method:
    """A copy of ``method`` fine-tuned on crops of ``images`` (float ``(3, H, W)``; with
    their ``targets`` for a method that needs them) at the adaptation settings."""
    import copy

    adapted = copy.deepcopy(method).to(device)
    fit_images(
        adapted,
        images,
        crop=crop,
        batch_size=ADAPT_BATCH,
        seed=seed,
        steps=steps,
        lr=lr,
        progress=progress,
        targets=targets,
    )
    return prepare_for_inference(adapted, device, precision=None)


def _adapt_student(
    student: Any,
    noisy: list[torch.Tensor],
    steps: int,
    teacher_steps: int,
    seed: int,
    device: torch.device,
    teacher: Any,
    progress: Callable[[int, float], None] | None,
) -> Method:
    from amsnet.training.distillation import plan_regions

    if teacher is None:
        teacher = student.settings.teacher
        if teacher is None:
            raise ConfigError(
                "this student's weights do not name its teacher, so it cannot be adapted; "
                "pass teacher= (the model it was distilled from)"
            )
    if not isinstance(teacher, torch.nn.Module):
        # The teacher's outputs are the student's targets: made in float32, whatever auto
        # would choose for denoising. On CC15 (--adapt 800 --ensemble 8, 2026-12-08) bfloat16
        # targets gave 35.67 dB in 114 s, float32 ones 35.69 in 110 s: bfloat16 speeds the
        # teacher up only 1.15x, and the adaptation's time is in the student's training.
        teacher = load_for_inference(teacher, str(device), precision="fp32")
    if teacher_steps:
        teacher = adapt(teacher, noisy, steps=teacher_steps, seed=seed, device=str(device))
    sizes = [(int(x.shape[1]), int(x.shape[2])) for x in noisy]
    regions = plan_regions(sizes, ADAPT_REGIONS, ADAPT_REGION_SIZE, seed)
    inputs, targets = [], []
    refine = student.settings.teacher_variant == "E"
    for region in regions:
        image = noisy[region.image]
        rows = slice(region.top, region.top + region.side)
        columns = slice(region.left, region.left + region.side)
        crop = image[:, rows, columns]
        plan = plan_tiles(teacher, region.side, region.side, refine=refine, tile=None)
        output = denoise_image(teacher, crop, refine=refine, seed=seed + region.number, plan=plan)
        inputs.append(crop)
        targets.append(output.clamp(0, 1))
    crop = min(ADAPT_CROP, min(r.side for r in regions))
    return _fine_tuned(
        student, inputs, crop, steps, seed, device, progress, targets, lr=ADAPT_STUDENT_LR
    )


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
            ``crop_size``, ``downscale_factors``, ``noise_scales``, ``batch_size``,
            ``teacher_variant``,
            ``precision``, ``teacher_precision``, ``init_from_teacher``, ``seed``,
            ``cache_dir``).

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
            "downscale_factors": config.data.train.downscale_factors,
            "noise_scales": config.data.train.noise_scales,
            "teacher_precision": config.data.train.teacher_precision,
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
    """A teacher must be a self-supervised model with masks (AMSNet, AP-BSN): its method
    class declares ``refinable`` and does not need targets.

    Raises:
        ConfigError: the file holds a one-pass model.
    """
    from amsnet.checkpoint import read_header

    name = read_header(path)["config"]["method"]["name"]
    kind = METHODS.get(name)
    if kind is None or kind.needs_target or not is_refinable(kind):
        raise ConfigError(
            f"{path} holds a {name} model; a teacher must be an AMSNet or AP-BSN model (its "
            "variant E output is what the student learns)"
        )


def _run(
    method: Method,
    source: torch.Tensor | np.ndarray,
    refine: bool,
    seed: int,
    tile: Any,
    ensemble: int,
    strength: float,
) -> torch.Tensor:
    height, width = (source.shape[:2]) if isinstance(source, np.ndarray) else source.shape[1:]
    plan = plan_tiles(method, int(height), int(width), refine=refine, tile=tile)
    return denoise_image(
        method, source, refine=refine, seed=seed, plan=plan, ensemble=ensemble, strength=strength
    )


def _as_list(images: Any) -> list[Any]:
    if isinstance(images, (np.ndarray, torch.Tensor, str, os.PathLike)) or is_pil(images):
        return [images]
    return list(images)


def _float_rgb(image: Any) -> torch.Tensor:
    """Any accepted image kind, or a file path, as float32 ``(3, H, W)`` in ``[0, 1]``."""
    if isinstance(image, (str, os.PathLike)):
        return read_image(image).rgb
    return as_float_rgb(image)


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
