"""One optimisation step, shared by the trainer and the quick fit.

:class:`TrainStep` runs a method's objective on a :class:`~amsnet.methods.base.Batch`,
back-propagates, clips and applies the optimiser, and skips the step when the loss or the
gradient norm is not finite: then the weights, the optimiser state, the batch-norm
statistics and the weight average stay as they were. The skip is decided on the device
(through a fused optimiser's ``found_inf`` input, or the loss scaler), so a step needs no host
read where a fused optimiser exists; elsewhere it reads one flag.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, TYPE_CHECKING

import torch
from torch import nn

from amsnet.config import Stage
from amsnet.methods.base import Batch, Method

if TYPE_CHECKING:  # pragma: no cover
    from amsnet.training.distributed import Distributed
    from amsnet.training.ema import WeightAverage


class ObjectiveModule(nn.Module):
    """A method's objective for one stage as a module's ``forward`` (what DDP wraps).

    ``forward`` takes tensors rather than a :class:`Batch` so that DDP moves them as it does
    any input.
    """

    def __init__(self, method: Method, stage: Stage) -> None:
        super().__init__()
        self.method = method
        self.stage = stage

    def forward(
        self, noisy: torch.Tensor, target: torch.Tensor | None, generator: torch.Generator
    ) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        output = self.method.objective(Batch(noisy, target), self.stage, generator=generator)
        return output.loss, output.terms


@dataclass
class StepOutcome:
    """What a step did, as device tensors (reading them on the host waits for the device).

    Attributes:
        loss: the float32 loss, detached (not finite for a bad batch).
        terms: its named parts, detached.
        bad_loss: 0-d bool, the loss was not finite.
        skipped: 0-d bool, the step changed nothing (bad loss or non-finite gradient).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor]
    bad_loss: torch.Tensor
    skipped: torch.Tensor


def grad_scaler(device: torch.device) -> Any:
    """PyTorch's loss scaler for float16 training on ``device``."""
    amp = getattr(torch, "amp", None)
    if amp is not None and hasattr(amp, "GradScaler"):
        return amp.GradScaler(device.type)
    return torch.cuda.amp.GradScaler()  # PyTorch < 2.3


def total_norm(parameters: Sequence[nn.Parameter]) -> torch.Tensor:
    """The gradients' global L2 norm (0-d; 0 without gradients)."""
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return torch.zeros(())
    get_total_norm = getattr(torch.nn.utils, "get_total_norm", None)
    if get_total_norm is not None:
        return get_total_norm(grads)
    return torch.linalg.vector_norm(torch.stack([torch.linalg.vector_norm(g) for g in grads]))


class TrainStep:
    """``step(batch, generator=..., lr=...)``: one optimisation step of ``method``.

    Args:
        method: the method to train (its trainable parameters are the optimiser's).
        optimizer: the optimiser of those parameters.
        stage: the objective's stage (``method.stages``).
        grad_clip: clip the gradient norm to this value (``None``: no clipping).
        scaler: a loss scaler (float16 training) or ``None``.
        average: a weight average updated after every applied step, or ``None``.
        context: the process group, so that processes skip together, or ``None``.
        objective: the module whose ``forward(noisy, target, generator)`` gives the loss
            (a DDP-wrapped :class:`ObjectiveModule` under torchrun); default: an
            :class:`ObjectiveModule` of ``method`` and ``stage``.
    """

    def __init__(
        self,
        method: Method,
        optimizer: torch.optim.Optimizer,
        stage: Stage,
        *,
        grad_clip: float | None = None,
        scaler: Any = None,
        average: WeightAverage | None = None,
        context: Distributed | None = None,
        objective: nn.Module | None = None,
    ) -> None:
        self.method = method
        self.optimizer = optimizer
        self.grad_clip = grad_clip
        self.scaler = scaler
        self.average = average
        self.context = context
        self.objective = objective if objective is not None else ObjectiveModule(method, stage)
        self.parameters = [p for p in method.parameters() if p.requires_grad]
        self.buffers = list(method.buffers())
        self.fused = bool(getattr(optimizer, "_step_supports_amp_scaling", False))

    def __call__(self, batch: Batch, *, generator: torch.Generator, lr: float) -> StepOutcome:
        """Train on ``batch`` (already on the method's device) at learning rate ``lr``;
        ``generator`` is the objective's source of masks."""
        for group in self.optimizer.param_groups:
            group["lr"] = lr
        self.optimizer.zero_grad(set_to_none=True)
        # Batch-norm statistics change in the forward pass; a skipped step must undo that too
        # (a NaN batch would otherwise poison them for good).
        buffers_before = [buffer.clone() for buffer in self.buffers]
        loss, terms = self.objective(batch.noisy, batch.target, generator)
        loss = loss.float()
        if self.scaler is not None:
            self.scaler.scale(loss).backward()
            self.scaler.unscale_(self.optimizer)
        else:
            loss.backward()
        if self.grad_clip is not None:
            norm = torch.nn.utils.clip_grad_norm_(self.parameters, self.grad_clip)
        else:
            norm = total_norm(self.parameters)
        bad_loss = ~torch.isfinite(loss.detach())
        skipped = bad_loss | ~torch.isfinite(norm.to(bad_loss.device))
        if self.context is not None and self.context.enabled:
            # Processes must skip together; the gradients agree, a local loss may not.
            skipped = self.context.all_reduce(skipped.float(), "max") > 0
        if self.scaler is not None:
            # The scaler skips steps with non-finite gradients itself (on the device for
            # fused optimisers) and adapts the scale.
            self.scaler.step(self.optimizer)
            self.scaler.update()
        elif self.fused:
            self.optimizer.found_inf = skipped.float()
            self.optimizer.grad_scale = None
            self.optimizer.step()
        elif not bool(skipped):  # one host read per step: no fused optimiser here
            self.optimizer.step()
        for buffer, before in zip(self.buffers, buffers_before, strict=True):
            buffer.copy_(torch.where(skipped, before, buffer))
        if self.average is not None:
            self.average.update(self.method, applied=~skipped)
        return StepOutcome(loss.detach(), terms, bad_loss, skipped)
