"""Supervised training of a backbone on noisy/clean pairs: the ceiling of the comparison.

A self-supervised method never sees a clean image. Training the *same* backbone with an L1 loss
against the ground truth, on the same noisy images and for the same budget, shows how much the
missing ground truth costs: the figure a self-supervised method is measured against (the
AMSNet paper compares with supervised results in the same way). This is not a self-supervised
method: its objective needs the clean image (``needs_target``), which training passes to it only.
"""

from __future__ import annotations

import torch
from torch import nn

from amsnet.config import SupervisedConfig
from amsnet.methods.base import LossOutput
from amsnet.methods.one_pass import OnePassMethod


class Supervised(OnePassMethod):
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

    # The target is the ground truth of each crop; stage B only (:meth:`training_loss`).
    settings_class = SupervisedConfig
    settings: SupervisedConfig
    description = "a supervised model"
    target_name = "clean"
    missing_target = (
        "the supervised method needs the clean targets (clean=...): train it on "
        "paired data (data.train.kind sidd_medium, paired_folder or synthetic_camera)"
    )

    def __init__(self, backbone: nn.Module) -> None:
        super().__init__(backbone, {})

    def refine_refusal(self) -> str:
        """R3 re-denoises a self-supervised estimate with some pixels put back to their noisy
        values, which only makes sense for networks that predict a pixel without seeing it; a
        supervised network has no such blind spot, so a "-E" figure for it would be
        meaningless."""
        return (
            "R3 refinement (variant E) is for self-supervised methods; a supervised "
            "network is evaluated without it: use variant B"
        )

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
        return self.target_loss(noisy, clean)
