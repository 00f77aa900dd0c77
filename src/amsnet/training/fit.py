"""A small, dependable optimisation loop for a self-supervised method.

``fit`` runs a method's own objective (``training_loss`` or ``finetune_loss``) on batches from
a sampler for a number of steps or a wall-clock budget, with AdamW and a cosine-decaying
learning rate. It is what the demo and the zero-shot mode use; long runs with validation,
checkpoints and resuming are the trainer's job.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Literal

import torch

from amsnet.errors import ConfigError
from amsnet.methods.base import target_keyword

log = logging.getLogger(__name__)

# A sampler returns noisy crops, or (noisy, clean) crops for a supervised objective.
BatchSampler = Callable[[torch.Generator], "torch.Tensor | tuple[torch.Tensor, torch.Tensor]"]
Objective = Literal["train", "finetune"]


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


def cosine_factor(progress: float, floor: float = 0.01) -> float:
    """Learning-rate multiplier: cosine from 1 at ``progress`` 0 down to ``floor`` at 1."""
    progress = min(max(progress, 0.0), 1.0)
    return floor + (1.0 - floor) * 0.5 * (1.0 + math.cos(math.pi * progress))


def fit(
    method: torch.nn.Module,
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
        method: an :class:`~amsnet.AMSNet` or :class:`~amsnet.APBSN` (trained in place).
        sample: ``sample(generator) -> (B, C, H, W)`` noisy crops in ``[0, 1]`` on the
            method's device, or ``(noisy, clean)`` crops for a supervised objective (then
            passed as ``training_loss(noisy, clean=clean)``).
        generator: source of the masks (and of ``sample``'s randomness).
        steps: number of optimisation steps.
        seconds: time budget, measured by ``clock``; the learning rate decays over it.
        lr: peak learning rate (AdamW).
        weight_decay: AdamW weight decay.
        objective: ``"train"`` (``training_loss``, L_m) or ``"finetune"`` (``finetune_loss``,
            L_t; AMSNet only).
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
            lacks; also when the loss stays non-finite (lower the learning rate).
    """
    if (steps is None) == (seconds is None):
        raise ConfigError("give exactly one of steps or seconds")
    if steps is not None and (isinstance(steps, bool) or not isinstance(steps, int) or steps < 1):
        raise ConfigError(f"steps must be a whole number of at least 1, got {steps!r}")
    if seconds is not None and not (isinstance(seconds, (int, float)) and seconds > 0):
        raise ConfigError(f"seconds must be a positive time budget, got {seconds!r}")
    if seconds is not None and not math.isfinite(seconds):
        raise ConfigError(f"seconds must be finite, got {seconds!r}")
    loss_fn = (
        method.training_loss if objective == "train" else getattr(method, "finetune_loss", None)
    )
    if loss_fn is None:
        raise ConfigError(f"{type(method).__name__} has no fine-tuning objective")
    parameters = [p for p in method.parameters() if p.requires_grad]
    optimiser = torch.optim.AdamW(parameters, lr=lr, weight_decay=weight_decay)
    method.train()
    result = FitResult()
    start = clock()
    bad_in_a_row = 0
    while True:
        elapsed = clock() - start
        done = result.steps / steps if steps is not None else elapsed / seconds
        if done >= 1.0:
            break
        for group in optimiser.param_groups:
            group["lr"] = lr * cosine_factor(done)
        batch = sample(generator)
        if isinstance(batch, tuple):
            noisy, clean = batch
            keyword = target_keyword(method) or "clean"
            loss = loss_fn(noisy, generator=generator, **{keyword: clean}).loss
        else:
            loss = loss_fn(batch, generator=generator).loss
        if not torch.isfinite(loss):
            result.skipped += 1
            bad_in_a_row += 1
            if bad_in_a_row >= max_bad_steps:
                raise ConfigError(
                    f"the loss was not finite for {bad_in_a_row} steps in a row "
                    f"(step {result.steps}); lower the learning rate (now {lr})"
                )
            optimiser.zero_grad(set_to_none=True)
            continue
        bad_in_a_row = 0
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        if grad_clip is not None:
            torch.nn.utils.clip_grad_norm_(parameters, grad_clip)
        optimiser.step()
        result.steps += 1
        if result.steps % log_every == 0 or result.steps == 1:
            value = float(loss.detach())
            result.losses.append((result.steps, value))
            if progress is not None:
                progress(result.steps, value)
    method.eval()
    result.seconds = clock() - start
    log.debug("fit: %d steps in %.1f s, %d skipped", result.steps, result.seconds, result.skipped)
    return result


def fit_images(
    method: torch.nn.Module,
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
        targets: clean ``(3, H, W)`` images matching ``images`` one to one, for a supervised
            method: crops are then cut at the same place in both.
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
