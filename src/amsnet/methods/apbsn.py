"""AP-BSN: asymmetric PD around a blind-spot network (Lee, Son, Lee, CVPR 2022).

Training: the noisy crop is pixel-shuffled with a large stride (5) into AP-BSN's padded mosaic,
so that the remaining noise is nearly independent; the blind-spot network (DBSNl) cannot see
the pixel it predicts, so an L1 loss against the noisy image over *all* pixels is a valid
self-supervised objective. Inference uses a small stride (2) to keep detail, and R3 (random
replacing refinement) removes the remaining artefacts.

The blind-spot network is what makes this work: with an ordinary denoiser the same loss is
minimised by the identity map (supplement section 1.8), which AMSNet avoids by masking.
"""

from __future__ import annotations

import torch
from torch import nn

from amsnet.config import APBSNConfig, Stage
from amsnet.losses import l1
from amsnet.methods.base import (
    BackboneMethod,
    Batch,
    constructor_arguments,
    default_generator,
    eval_mode,
    LossOutput,
    require_stage,
)
from amsnet.ops.checks import check_bchw
from amsnet.ops.masks import PixelKey
from amsnet.ops.padding import crop, pad, pad_to_multiple
from amsnet.ops.pixel_shuffle import pd_mosaic_down, pd_mosaic_up
from amsnet.ops.refine import random_replace_refine
from amsnet.precision import run_backbone


class APBSN(BackboneMethod):
    """AP-BSN around a blind-spot backbone (normally ``create_net("dbsnl")``).

    Args:
        backbone: a blind-spot network (``backbone.blind_spot`` True). Any network is accepted
            so that the identity-mapping ablation can be run; with a non-blind one the loss
            collapses to the identity.
        pd_factor_train: PD stride while training (AP-BSN: 5).
        pd_factor_eval: PD stride at inference (AP-BSN: 2).
        pd_pad: padding around mosaic tiles, and reflect padding of R3 (AP-BSN: 2).
        refine_passes: R3 passes (8).
        refine_ratio: R3 per-element replacement probability (0.16).
        value_scale: the backbone sees ``x * value_scale``; AP-BSN's weights expect [0, 255].

    Example:
        >>> from amsnet.nets import create_net
        >>> method = APBSN(create_net("dbsnl", preset="small"))
        >>> method.denoise(torch.rand(1, 3, 21, 30)).shape
        torch.Size([1, 3, 21, 30])
    """

    settings_class = APBSNConfig  # stage B only (:meth:`training_loss`)
    settings: APBSNConfig
    description = "an AP-BSN model"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        pd_factor_train: int = 5,
        pd_factor_eval: int = 2,
        pd_pad: int = 2,
        refine_passes: int = 8,
        refine_ratio: float = 0.16,
        value_scale: float = 255.0,
    ) -> None:
        super().__init__(backbone, constructor_arguments(locals()))

    def pd_denoise(self, noisy: torch.Tensor, factor: int) -> torch.Tensor:
        """The blind-spot network on the PD mosaic of stride ``factor`` (differentiable).

        Args:
            noisy: ``(B, C, H, W)`` in ``[0, 1]``, any H and W (reflect-padded to a multiple
                of ``factor`` and cropped back; the official code zero-pads instead).
            factor: PD stride.

        Returns:
            ``(B, C, H, W)``.
        """
        s = self.settings
        padded, padding = pad_to_multiple(noisy, factor, "reflect")
        mosaic = pd_mosaic_down(padded * s.value_scale, factor, s.pd_pad)
        out = pd_mosaic_up(
            run_backbone(self.backbone, mosaic, self.backbone_dtype), factor, s.pd_pad
        )
        return crop(out, padding) / s.value_scale

    def _full_resolution(self, batch: torch.Tensor) -> torch.Tensor:
        """R3's network call: no PD, reflect padding of ``pd_pad`` pixels, cropped back."""
        s = self.settings
        p = s.pd_pad
        out = run_backbone(
            self.backbone, pad(batch * s.value_scale, (p, p, p, p), "reflect"), self.backbone_dtype
        )
        return crop(out, (p, p, p, p)) / s.value_scale

    def objective(
        self, batch: Batch, stage: Stage = "B", *, generator: torch.Generator
    ) -> LossOutput:
        """Stage B: :meth:`training_loss` of ``batch.noisy``.

        Raises:
            ConfigError: another stage.
        """
        require_stage(self, stage)
        return self.training_loss(batch.noisy, generator=generator)

    def training_loss(
        self, noisy: torch.Tensor, *, generator: torch.Generator | None = None
    ) -> LossOutput:
        """AP-BSN's ``self_L1``: L1 between the PD-5 blind-spot output and the noisy input.

        The loss is reported on the [0, 1] scale (AP-BSN's own is 255 times larger, which
        Adam-type optimisers do not notice). ``generator`` is unused: the objective is
        deterministic; it is accepted to follow the method contract.
        """
        check_bchw(noisy, "noisy")
        denoised = self.pd_denoise(noisy, self.settings.pd_factor_train)
        loss = l1(denoised, noisy)
        return LossOutput(loss=loss, terms={"self_l1": loss.detach()})

    def denoise(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        refine: bool = False,
        refine_batch: int | None = None,
        pixel_key: PixelKey | None = None,
    ) -> torch.Tensor:
        """PD-2 blind-spot denoising, optionally refined by AP-BSN's R3.

        Args:
            noisy: ``(B, C, H, W)`` in ``[0, 1]``, any H and W.
            generator: source of the R3 masks; ``None`` uses a fixed seed (0).
            refine: apply R3 (AP-BSN's reported setting, "AP-BSN + R3").
            refine_batch: at most this many R3 passes per backbone call (default: as many as
                :func:`amsnet.ops.refine.default_passes_per_call` allows).
            pixel_key: key R3's masks to absolute pixel positions instead of drawing them
                from ``generator`` (tiled inference; see :class:`amsnet.ops.masks.PixelKey`).

        Returns:
            Denoised ``(B, C, H, W)`` (not clamped), always the input size (the official R3
            path returns the padded size for odd sizes).
        """
        check_bchw(noisy, "noisy")
        s = self.settings
        with torch.no_grad(), eval_mode(self.backbone):
            denoised = self.pd_denoise(noisy, s.pd_factor_eval)
            if refine:
                g = generator if generator is not None else default_generator(noisy.device)
                denoised = random_replace_refine(
                    noisy,
                    denoised,
                    lambda batch, _passes: self._full_resolution(batch),
                    generator=None if pixel_key is not None else g,
                    pixel_key=pixel_key,
                    passes=s.refine_passes,
                    ratio=s.refine_ratio,
                    passes_per_call=refine_batch,
                    per_channel=True,
                )
        return denoised
