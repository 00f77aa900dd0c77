"""What the one-pass methods share: an L1 objective against a target, one backbone pass at
inference, no PD, no masks and so no R3 (:class:`~amsnet.methods.Supervised`,
:class:`~amsnet.methods.Distilled`)."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from amsnet.config import Stage
from amsnet.errors import ConfigError, ShapeError
from amsnet.losses import l1
from amsnet.methods.base import (
    Adaptation,
    BackboneMethod,
    Batch,
    eval_mode,
    LossOutput,
    require_stage,
)
from amsnet.ops.checks import check_bchw
from amsnet.precision import run_backbone


class OnePassMethod(BackboneMethod):
    """A backbone trained with L1 against ``Batch.target`` and run once to denoise.

    Subclasses name the target (``target_name``), say how to train with one when it is
    missing (``missing_target``) and why R3 does not apply (:meth:`refine_refusal`).
    """

    needs_target: ClassVar[bool] = True
    refinable: ClassVar[bool] = False
    adaptation: ClassVar[Adaptation | None] = None

    target_name: ClassVar[str] = "target"
    """The target's name in messages (``clean`` for the ground truth)."""

    missing_target: ClassVar[str]
    """The message when the objective gets no target: how to train with one."""

    def refine_refusal(self) -> str:
        """Why ``denoise(refine=True)`` is refused, and what to use instead."""
        raise NotImplementedError

    def objective(
        self, batch: Batch, stage: Stage = "B", *, generator: torch.Generator
    ) -> LossOutput:
        """Stage B: :meth:`target_loss` of ``batch.noisy`` against ``batch.target``.

        Raises:
            ConfigError: another stage, or no target.
        """
        require_stage(self, stage)
        return self.target_loss(batch.noisy, batch.target)

    def target_loss(self, noisy: torch.Tensor, target: torch.Tensor | None) -> LossOutput:
        """L1 between the backbone's output for ``noisy`` and ``target``.

        Args:
            noisy: crops ``(B, C, H, W)`` in ``[0, 1]``.
            target: what the output should be, same shape, in ``[0, 1]``.

        Returns:
            :class:`LossOutput` with ``terms["l1"]``.

        Raises:
            ConfigError: ``target`` is missing (:attr:`missing_target` says how to train).
            ShapeError: ``target`` has another shape than ``noisy``.
        """
        check_bchw(noisy, "noisy")
        if target is None:
            raise ConfigError(self.missing_target)
        name = self.target_name
        check_bchw(target, name)
        if target.shape != noisy.shape:
            raise ShapeError(
                f"{name} {tuple(target.shape)} and noisy {tuple(noisy.shape)} must have one shape"
            )
        loss = l1(run_backbone(self.backbone, noisy, self.backbone_dtype), target)
        return LossOutput(loss=loss, terms={"l1": loss.detach()})

    def denoise(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        refine: bool = False,
        refine_batch: int | None = None,
        pixel_key: Any = None,
    ) -> torch.Tensor:
        """One backbone pass without gradients, the backbone in eval mode.

        Args:
            noisy: ``(B, C, H, W)`` in ``[0, 1]``, any H and W.
            generator: unused (inference is deterministic).
            refine: must be False (:meth:`refine_refusal` says why).
            refine_batch: unused (no R3); accepted to follow the method contract.
            pixel_key: unused (nothing random to key to pixel positions); accepted so that
                tiled inference works unchanged.

        Returns:
            Denoised ``(B, C, H, W)`` (not clamped).

        Raises:
            ConfigError: ``refine=True``.
        """
        check_bchw(noisy, "noisy")
        if refine:
            raise ConfigError(self.refine_refusal())
        with torch.no_grad(), eval_mode(self.backbone):
            return run_backbone(self.backbone, noisy, self.backbone_dtype)
