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

import torch
from torch import nn

from amsnet.config import DistilledConfig
from amsnet.methods.base import constructor_arguments, LossOutput
from amsnet.methods.one_pass import OnePassMethod


class Distilled(OnePassMethod):
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

    # The target is the teacher's output for each crop; stage B only (:meth:`training_loss`).
    settings_class = DistilledConfig
    settings: DistilledConfig
    description = "a distilled student"
    # No self-supervised objective of its own: amsnet.adapt adapts its teacher and distils
    # the student again from it.
    adaptation = "teacher"
    missing_target = (
        "a distilled student needs the teacher's outputs (target=...): train it with "
        "amsnet distill, or data.train.kind: distillation"
    )

    def __init__(
        self,
        backbone: nn.Module,
        *,
        teacher: str | None = None,
        teacher_variant: str = "E",
    ) -> None:
        super().__init__(backbone, constructor_arguments(locals()))

    def refine_refusal(self) -> str:
        """The student has no masks, and its output already is the teacher's (refined)."""
        return (
            "a distilled student has no masks, so R3 (variant E) does not apply: it "
            f"already reproduces its teacher's variant {self.settings.teacher_variant} "
            "output in one pass; use variant B"
        )

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
        return self.target_loss(noisy, target)
