"""A small, dependable optimisation loop for a self-supervised method.

``fit`` runs a method's objective (stage B or P) on batches from a sampler for a number of
steps or a wall-clock budget, with AdamW and a cosine-decaying learning rate
(:func:`amsnet.training.schedule.cosine_factor`), one :class:`~amsnet.training.step.TrainStep`
per step as in the trainer. It is what the demo and the zero-shot mode use; long runs with
validation, checkpoints and resuming are the trainer's job.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from amsnet.config import Stage
from amsnet.errors import ConfigError
from amsnet.methods.base import Batch, Method, require_stage
from amsnet.training.schedule import cosine_factor
from amsnet.training.step import TrainStep

log = logging.getLogger(__name__)

# A sampler returns noisy crops, a (noisy, target) pair of crops or a Batch.
BatchSampler = Callable[
    [torch.Generator], "torch.Tensor | tuple[torch.Tensor, torch.Tensor] | Batch"
]
Objective = Literal["train", "finetune"]
STAGE_OF_OBJECTIVE: dict[str, Stage] = {"train": "B", "finetune": "P"}


@dataclass
class FitResult:
    """What a fit did.

    Attributes:
        steps: optimisation steps taken.
        seconds: time spent (by the fit's clock: wall-clock unless told otherwise).
        losses: (step, loss) every ``log_every`` steps.
        skipped: steps skipped because the loss was not finite.
    """

    steps: int = 0
    seconds: float = 0.0
    losses: list[tuple[int, float]] = field(default_factory=list)
    skipped: int = 0


def fit(
    method: Method,
    sample: BatchSampler,
    *,
    generator: torch.Generator,
    steps: int | None = None,
    seconds: float | None = None,
    lr: float = 1e-3,
    weight_decay: float = 0.0,
    objective: Objective = "train",
    grad_clip: float | None = 1.0,
    max_bad_steps: int = 20,
    log_every: int = 25,
    progress: Callable[[int, float], None] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """Optimise ``method`` on batches drawn by ``sample`` for ``steps`` or ``seconds``.

    Args:
        method: any method (:class:`amsnet.methods.base.Method`; trained in place).
        sample: ``sample(generator) -> (B, C, H, W)`` noisy crops in ``[0, 1]`` on the
            method's device, or ``(noisy, target)`` crops (or a :class:`Batch`) for a method
            that ``needs_target``.
        generator: source of the masks (and of ``sample``'s randomness).
        steps: number of optimisation steps.
        seconds: time budget, measured by ``clock``; the learning rate decays over it.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        objective: ``"train"`` (stage B: AMSNet's L_m) or ``"finetune"`` (stage P: L_t; for
            methods whose ``stages`` include it).
        grad_clip: clip the gradient norm to this value (``None``: off).
        max_bad_steps: stop with an error after this many consecutive non-finite losses.
        log_every: record the loss every this many steps.
        progress: optional ``progress(step, loss)`` callback.
        clock: the clock of ``seconds``: wall-clock time by default; ``time.process_time``
            (CPU time of this process, all threads) gives budgets that other programs on the
            machine cannot shrink, which is what equal-budget comparisons need.

    Returns:
        :class:`FitResult` (``seconds`` measured by ``clock``).

    Raises:
        ConfigError: neither or both of ``steps`` / ``seconds``, or an objective the method
            lacks; targets for a self-supervised method; also when the loss stays
            non-finite (lower the learning rate).
    """
    if (steps is None) == (seconds is None):
        raise ConfigError("give exactly one of steps or seconds")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"steps must be a whole number of at least 1, got {steps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise ConfigError(f"seconds must be a positive time budget, got {seconds!r}")
    if seconds is not None and not math.isfinite(seconds):
        raise ConfigError(f"seconds must be finite, got {seconds!r}")
    if objective not in STAGE_OF_OBJECTIVE:
        raise ConfigError(f"objective must be 'train' or 'finetune', got {objective!r}")
    stage = STAGE_OF_OBJECTIVE[objective]
    require_stage(method, stage)
    parameters = [p for p in method.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    step = TrainStep(method, optimiser, stage, grad_clip=grad_clip)
    method.train()
    result = FitResult()
    start = clock()
    bad_in_a_row = 0
    while True:
        elapsed = clock() - start
        done = result.steps / steps if steps is not None else elapsed / seconds
        if done >= 1.0:
            break
        batch = _as_batch(method, sample(generator))
        outcome = step(batch, generator=generator, lr=lr * cosine_factor(done))
        if bool(outcome.skipped):
            result.skipped += 1
            bad_in_a_row += 1
            if bad_in_a_row >= max_bad_steps:
                raise ConfigError(
                    f"the loss was not finite for {bad_in_a_row} steps in a row "
                    f"(step {result.steps}); lower the learning rate (now {lr})"
                )
            continue
        bad_in_a_row = 0
        result.steps += 1
        if result.steps % log_every == 0 or result.steps == 1:
            value = float(outcome.loss)
            result.losses.append((result.steps, value))
            if progress is not None:
                progress(result.steps, value)
    method.eval()
    result.seconds = clock() - start
    log.debug("fit: %d steps in %.1f s, %d skipped", result.steps, result.seconds, result.skipped)
    return result


def _as_batch(method: Method, drawn: torch.Tensor | tuple[torch.Tensor, ...] | Batch) -> Batch:
    """A sampler's draw as a :class:`Batch`; a target only for a method that needs one."""
    if isinstance(drawn, Batch):
        batch = drawn
    elif isinstance(drawn, tuple):
        batch = Batch(*drawn)
    else:
        batch = Batch(drawn)
    if batch.target is not None and not method.needs_target:
        raise ConfigError(
            f"{type(method).__name__} is self-supervised and must not see targets: the "
            "sampler must give noisy crops only (fit_images: leave targets unset)"
        )
    return batch


def fit_images(
    method: Method,
    images: list[torch.Tensor],
    *,
    crop: int,
    batch_size: int,
    seed: int = 0,
    steps: int | None = None,
    seconds: float | None = None,
    lr: float = 1e-3,
    progress: Callable[[int, float], None] | None = None,
    objective: Objective = "train",
    targets: list[torch.Tensor] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> FitResult:
    """:func:`fit` on random crops of in-memory noisy images (zero-shot fits, the demo).

    Args:
        method: the model, on the device it should train on.
        images: noisy ``(3, H, W)`` tensors in ``[0, 1]`` (any sizes).
        crop: crop side (a multiple of the method's training PD factor).
        batch_size: crops per step.
        seed: seeds the crops (CPU generator) and the masks (on the method's device).
        steps: number of steps (or give ``seconds``).
        seconds: time budget (see ``clock``).
        lr: peak learning rate.
        progress: ``progress(step, loss)`` callback.
        objective: ``"train"`` or ``"finetune"`` (see :func:`fit`).
        targets: ``(3, H, W)`` images matching ``images`` one to one (clean images, or a
            teacher's outputs), for a method that ``needs_target``: crops are then cut at the
            same place in both.
        clock: the clock of ``seconds`` (see :func:`fit`).

    Raises:
        ConfigError: ``targets`` does not match ``images``.
    """
    from amsnet.data.crops import random_crops

    device = next(method.parameters()).device
    channels = images[0].shape[0] if images else 0
    if targets is not None:
        if len(targets) != len(images) or any(
            t.shape != x.shape for t, x in zip(targets, images, strict=False)
        ):
            raise ConfigError("targets must have one image of the same shape per noisy image")
        # One crop (and flip) for both: stack noisy and clean along the channels.
        images = [torch.cat([x, t]) for x, t in zip(images, targets, strict=True)]
    on_device = [x.to(device) for x in images]
    crops = torch.Generator().manual_seed(seed)

    def sample(_: torch.Generator) -> torch.Tensor | tuple[torch.Tensor, torch.Tensor]:
        batch = random_crops(on_device, size=crop, batch_size=batch_size, generator=crops)
        return batch if targets is None else (batch[:, :channels], batch[:, channels:])

    masks = torch.Generator(device=device).manual_seed(seed + 1)
    return fit(
        method,
        sample,
        generator=masks,
        steps=steps,
        seconds=seconds,
        lr=lr,
        progress=progress,
        objective=objective,
        clock=clock,
    )
