"""Exponential moving average (EMA) of a model's weights.

After every optimisation step ``average = decay * average + (1 - decay) * weights`` for every
floating-point parameter and buffer (batch-norm statistics included, so the averaged weights
come with matching statistics); integer buffers (``num_batches_tracked``) are copied. The
average is a full copy of the method (``copy.deepcopy``), so it can be validated and saved like
the model itself. The update runs on the device without reading anything back to the host, and
a step the trainer skipped (non-finite loss) leaves the average unchanged.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn

from amsnet.errors import CheckpointError, ConfigError


class WeightAverage:
    """An EMA copy of ``module`` (its ``module`` attribute), updated with :meth:`update`.

    Args:
        module: the model being trained (copied once, then averaged).
        decay: weight of the old average, in ``(0, 1)`` (0.999 averages over about 1000 steps).

    Example:
        >>> model = torch.nn.Linear(2, 1)
        >>> average = WeightAverage(model, decay=0.5)
        >>> with torch.no_grad():
        ...     _ = model.weight.add_(2.0)
        >>> average.update(model)
        >>> torch.allclose(average.module.weight, model.weight - 1.0)
        True
    """

    def __init__(self, module: nn.Module, decay: float) -> None:
        if not 0.0 < decay < 1.0:
            raise ConfigError(f"the EMA decay must lie in (0, 1), got {decay}")
        self.decay = decay
        self.module = copy.deepcopy(module)
        self.module.requires_grad_(False)

    def _pairs(self, module: nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
        ours = list(self.module.parameters()) + list(self.module.buffers())
        theirs = list(module.parameters()) + list(module.buffers())
        if len(ours) != len(theirs):
            raise ConfigError("the averaged module and the model have different structures")
        return list(zip(ours, theirs, strict=True))

    @torch.no_grad()
    def update(self, module: nn.Module, applied: torch.Tensor | None = None) -> None:
        """Move the average towards ``module``'s current weights.

        Args:
            module: the model (same structure as the averaged copy).
            applied: optional 0-dim tensor on the weights' device, 1 if the optimiser step
                was taken and 0 if it was skipped (then the average does not move).
        """
        weight: float | torch.Tensor = 1.0 - self.decay
        if applied is not None:
            weight = applied.to(torch.float32) * (1.0 - self.decay)
        for average, current in self._pairs(module):
            if average.is_floating_point():
                step = weight if isinstance(weight, float) else weight.to(average.dtype)
                average.lerp_(current.detach(), step)
            else:
                average.copy_(current)

    def state_dict(self) -> dict[str, Any]:
        """``{"decay": float, "weights": the averaged module's state dict}``."""
        return {"decay": self.decay, "weights": self.module.state_dict()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what :meth:`state_dict` returned.

        Raises:
            CheckpointError: the stored average does not fit the model.
        """
        try:
            self.module.load_state_dict(state["weights"], strict=True)
        except (KeyError, RuntimeError) as error:
            raise CheckpointError(
                f"the stored weight average does not fit the model ({error}); resume with the "
                "configuration the run was started with"
            ) from None
        self.decay = float(state.get("decay", self.decay))
