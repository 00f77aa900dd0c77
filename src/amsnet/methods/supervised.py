"""Supervised training of a backbone on noisy/clean pairs: the ceiling of the comparison.

A self-supervised method never sees a clean image. Training the *same* backbone with an L1 loss
against the ground truth, on the same noisy images and for the same budget, shows how much the
missing ground truth costs: the figure a self-supervised method is measured against (the
AMSNet paper compares with supervised results in the same way). This is not a self-supervised
method: its objective needs the clean image (``needs_target``), which training passes to it only.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
from torch import nn

from amsnet.config import Stage, SupervisedConfig, validate
from amsnet.errors import ConfigError, ShapeError
from amsnet.losses import l1
from amsnet.methods.base import Batch, eval_mode, LossOutput, require_stage
from amsnet.ops.checks import check_bchw
from amsnet.precision import run_backbone


class Supervised(nn.Module):
    """An ordinary denoiser trained on noisy/clean pairs (L1), denoising in one pass.

    Args:
        backbone: any registered backbone (:func:`amsnet.create_net`).

    Example:
        >>> from amsnet.nets import create_net
        >>> method = Supervised(create_net("dncnn", preset="small"))
        >>> noisy, clean = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
        >>> method.training_loss(noisy, clean=clean).loss.shape
        torch.Size([])
        >>> method.denoise(noisy).shape
        torch.Size([2, 3, 24, 24])
    """

    needs_target: ClassVar[bool] = True
    """The objective needs ``Batch.target``: the ground truth of each crop."""

    stages: ClassVar[tuple[Stage, ...]] = SupervisedConfig.stages
    """``B`` only (:meth:`training_loss`)."""

    backbone_dtype: torch.dtype | None = None
    """The dtype the backbone runs in (``None``: float32; :mod:`amsnet.precision`)."""

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__()
        self.backbone = backbone
        self.settings: SupervisedConfig = validate(SupervisedConfig, {}, "Supervised arguments")

    def method_config(self) -> dict[str, Any]:
        """The settings that rebuild this method (``{"name": "supervised"}``)."""
        return self.settings.model_dump()

    def objective(
        self, batch: Batch, stage: Stage = "B", *, generator: torch.Generator
    ) -> LossOutput:
        """Stage B: :meth:`training_loss` of ``batch.noisy`` against ``batch.target``.

        Raises:
            ConfigError: another stage, or no target.
        """
        require_stage(self, stage)
        return self.training_loss(batch.noisy, clean=batch.target)

    def training_loss(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        clean: torch.Tensor | None = None,
    ) -> LossOutput:
        """L1 between the backbone's output for ``noisy`` and ``clean``.

        Args:
            noisy: crops ``(B, C, H, W)`` in ``[0, 1]``.
            generator: unused (the objective is deterministic); accepted to follow the method
                contract.
            clean: the ground truth of ``noisy``, same shape.

        Returns:
            :class:`LossOutput` with ``terms["l1"]``.

        Raises:
            ConfigError: ``clean`` is missing (train on paired data).
            ShapeError: ``clean`` has another shape than ``noisy``.
        """
        check_bchw(noisy, "noisy")
        if clean is None:
            raise ConfigError(
                "the supervised method needs the clean targets (clean=...): train it on "
                "paired data (data.train.kind sidd_medium, paired_folder or synthetic_camera)"
            )
        check_bchw(clean, "clean")
        if clean.shape != noisy.shape:
            raise ShapeError(
                f"clean {tuple(clean.shape)} and noisy {tuple(noisy.shape)} must have one shape"
            )
        loss = l1(run_backbone(self.backbone, noisy, self.backbone_dtype), clean)
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
            refine: must be False: R3 re-denoises a self-supervised estimate with some pixels
                put back to their noisy values, which only makes sense for networks that
                predict a pixel without seeing it; a supervised network has no such blind
                spot, so a "-E" figure for it would be meaningless.
            refine_batch: unused (no R3); accepted to follow the method contract.
            pixel_key: unused (nothing random to key to pixel positions); accepted to follow
                the method contract, so tiled inference works unchanged.

        Returns:
            Denoised ``(B, C, H, W)`` (not clamped).

        Raises:
            ConfigError: ``refine=True``.
        """
        check_bchw(noisy, "noisy")
        if refine:
            raise ConfigError(
                "R3 refinement (variant E) is for self-supervised methods; a supervised "
                "network is evaluated without it: use variant B"
            )
        with torch.no_grad(), eval_mode(self.backbone):
            return run_backbone(self.backbone, noisy, self.backbone_dtype)
