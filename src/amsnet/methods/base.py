"""The method contract: an explicit training objective and an explicit inference.

A method never has a ``forward`` that switches on ``self.training``: training calls
``training_loss``, inference calls ``denoise`` (which runs without gradients).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import torch


@dataclass
class LossOutput:
    """A training objective's value.

    Attributes:
        loss: the scalar to minimise.
        terms: its named parts, detached, for logging (for example ``mask_l1``).
    """

    loss: torch.Tensor
    terms: dict[str, torch.Tensor] = field(default_factory=dict)


@runtime_checkable
class SelfSupervisedMethod(Protocol):
    """What the trainer, the evaluator and the inference code rely on."""

    backbone: torch.nn.Module

    def training_loss(self, noisy: torch.Tensor, *, generator: torch.Generator) -> LossOutput:
        """Self-supervised loss of a batch of noisy crops ``(B, C, H, W)`` in ``[0, 1]``."""
        ...

    def denoise(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        refine: bool = False,
        refine_batch: int | None = None,
        pixel_key: Any = None,
    ) -> torch.Tensor:
        """Denoised images, same shape as ``noisy``; no gradients."""
        ...

    def method_config(self) -> dict[str, Any]:
        """The settings that rebuild this method (stored in weights files)."""
        ...


def target_keyword(method: object) -> str | None:
    """The keyword under which ``method``'s objective takes the image paired with each noisy
    crop (``"clean"`` for the supervised ceiling, ``"target"`` for a distilled student), or
    ``None`` for a self-supervised method, which must only ever see noisy pixels.

    Training code asks this instead of testing for method classes, so a new method that needs
    a target declares it in one place: a ``target_keyword`` class attribute.
    """
    return getattr(type(method), "target_keyword", None)


def constructor_arguments(local_variables: dict[str, Any]) -> dict[str, Any]:
    """A method's settings from its constructor's ``locals()`` (called first thing).

    The methods take their settings as explicit keyword arguments (readable signatures) and
    validate them all at once with their pydantic config.
    """
    return {
        key: value
        for key, value in local_variables.items()
        if key not in ("self", "backbone", "__class__")
    }


def default_generator(device: torch.device, seed: int = 0) -> torch.Generator:
    """A generator on ``device`` seeded with ``seed`` (``denoise`` is deterministic by default)."""
    return torch.Generator(device=device).manual_seed(seed)


@contextmanager
def eval_mode(module: torch.nn.Module) -> Iterator[torch.nn.Module]:
    """Put ``module`` in eval mode for the block and restore its previous mode after.

    Inference must not update BatchNorm statistics, yet calling ``denoise`` in the middle of
    training must not leave the model in eval mode either.
    """
    was_training = module.training
    module.eval()
    try:
        yield module
    finally:
        module.train(was_training)
