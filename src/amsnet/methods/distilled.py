"""A one-pass student distilled from a self-supervised teacher (beyond the paper).

AMSNet's best output (variant P-E) costs k branches times (1 + R3's 8 passes) backbone calls
per pixel: 18 with k = 2. TBSN (Li et al.) and TM-BSN distil their blind-spot teachers into a
plain network that sees the whole noisy image and denoises it in a single pass. The student
here is any registered backbone trained with an L1 loss to reproduce the teacher's output on
noisy crops (:mod:`amsnet.training.distillation` computes and caches those outputs): no PD,
no masks and no R3 at inference, so it runs about 18 times faster than the teacher's P-E.

It never sees a clean image either: its targets are the teacher's estimates, so the whole
pipeline stays self-supervised.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from amsnet.config import DistilledConfig, Stage, validate
from amsnet.errors import ConfigError, ShapeError
from amsnet.losses import l1
from amsnet.methods.base import (
    Batch,
    constructor_arguments,
    eval_mode,
    LossOutput,
    require_stage,
)
from amsnet.ops.checks import check_bchw
from amsnet.precision import run_backbone


class Distilled(nn.Module):
    """A backbone trained to reproduce a teacher's denoised output, run once at inference.

    Args:
        backbone: any registered backbone (:func:`amsnet.create_net`).
        teacher: provenance of the targets, stored in weights files: the teacher's shipped
            model name or file name (informational; inference does not need the teacher).
        teacher_variant: the teacher output it learned: ``"E"`` (with R3, the default) or
            ``"B"``.

    Example:
        >>> from amsnet.nets import create_net
        >>> student = Distilled(create_net("dncnn", preset="small"))
        >>> noisy, target = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
        >>> student.training_loss(noisy, target=target).loss.shape
        torch.Size([])
        >>> student.denoise(noisy).shape
        torch.Size([2, 3, 24, 24])
    """

    needs_target: ClassVar[bool] = True
    """The objective needs ``Batch.target``: the teacher's output for each crop."""

    stages: ClassVar[tuple[Stage, ...]] = DistilledConfig.stages
    """``B`` only (:meth:`training_loss`)."""

    backbone_dtype: torch.dtype | None = None
    """The dtype the backbone runs in (``None``: float32; :mod:`amsnet.precision`)."""

    def __init__(
        self,
        backbone: nn.Module,
        *,
        teacher: str | None = None,
        teacher_variant: str = "E",
    ) -> None:
        arguments = constructor_arguments(locals())
        super().__init__()
        self.backbone = backbone
        self.settings: DistilledConfig = validate(DistilledConfig, arguments, "Distilled arguments")

    def method_config(self) -> dict[str, Any]:
        """The settings that rebuild this method."""
        return self.settings.model_dump()

    def objective(
        self, batch: Batch, stage: Stage = "B", *, generator: torch.Generator
    ) -> LossOutput:
        """Stage B: :meth:`training_loss` of ``batch.noisy`` against ``batch.target``.

        Raises:
            ConfigError: another stage, or no target.
        """
        require_stage(self, stage)
        return self.training_loss(batch.noisy, target=batch.target)

    def training_loss(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        target: torch.Tensor | None = None,
    ) -> LossOutput:
        """L1 between the backbone's output for ``noisy`` and the teacher's ``target``.

        Args:
            noisy: crops ``(B, C, H, W)`` in ``[0, 1]``.
            generator: unused (the objective is deterministic); accepted to follow the method
                contract.
            target: the teacher's output for ``noisy``, same shape, in ``[0, 1]``.

        Returns:
            :class:`LossOutput` with ``terms["l1"]``.

        Raises:
            ConfigError: ``target`` is missing (train on ``data.train.kind: distillation``).
            ShapeError: ``target`` has another shape than ``noisy``.
        """
        check_bchw(noisy, "noisy")
        if target is None:
            raise ConfigError(
                "a distilled student needs the teacher's outputs (target=...): train it with "
                "amsnet distill, or data.train.kind: distillation"
            )
        check_bchw(target, "target")
        if target.shape != noisy.shape:
            raise ShapeError(
                f"target {tuple(target.shape)} and noisy {tuple(noisy.shape)} must have one shape"
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
            refine: must be False: the student has no masks, and its output already is the
                teacher's refined (R3) estimate.
            refine_batch: unused; accepted to follow the method contract.
            pixel_key: unused; accepted so that tiled inference works unchanged.

        Returns:
            Denoised ``(B, C, H, W)`` (not clamped).

        Raises:
            ConfigError: ``refine=True``.
        """
        check_bchw(noisy, "noisy")
        if refine:
            raise ConfigError(
                "a distilled student has no masks, so R3 (variant E) does not apply: it "
                f"already reproduces its teacher's variant {self.settings.teacher_variant} "
                "output in one pass; use variant B"
            )
        with torch.no_grad(), eval_mode(self.backbone):
            return run_backbone(self.backbone, noisy, self.backbone_dtype)
