"""AMSNet: the asymmetric mask scheme (Liao, Zheng, Zhong, Zhang, Ren, ECCV 2024).

Training (one branch, loss L_m, supplement Eq. 1):
    the noisy crop is pixel-shuffled with P_5; the sub-images' pixels are split into k random
    disjoint sets; the backbone sees a sub-image with one set hidden (set to 0) and is scored
    on the hidden pixels only. It cannot copy a hidden pixel's noise into its prediction,
    whatever its receptive field, which is why any ordinary denoiser works.

Inference (all k complementary branches, main paper Eq. 5):
    P_2, a fresh partition, and all k masked copies through the backbone in ONE batched call;
    every pixel is taken from the branch that hid it, so every pixel is predicted while hidden.

Fine-tuning (AMSNet-P, loss L_t): L1 between the k-branch output I_DN and the noisy input plus
lambda times a smoothness prior on I_DN (and optionally a colour-consistency term).

Refinement (AMSNet-*-E): R3 with the whole masked network at full resolution.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from amsnet.config import AMSNetConfig, Stage
from amsnet.errors import ConfigError
from amsnet.losses import colour_consistency, l1, masked_l1, total_variation
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
from amsnet.ops.masks import hidden_masks, hide, keyed_partition, PixelKey, random_partition
from amsnet.ops.padding import crop, pad, pad_to_multiple, Padding
from amsnet.ops.pixel_shuffle import pd_down, pd_up
from amsnet.ops.refine import (
    random_replace_refine,
    REFINE_PARTITION_STREAM,
    refine_streams,
)
from amsnet.precision import run_backbone


class AMSNet(BackboneMethod):
    """The asymmetric mask scheme around any backbone.

    Args:
        backbone: an ordinary denoiser (see :mod:`amsnet.nets.base`); one network is shared by
            all branches, as in every released configuration.
        pd_factor_train: PD stride of the training loss (paper: 5).
        pd_factor_eval: PD stride at inference (paper: 2).
        pd_factor_finetune: PD stride of the L_t output (default: ``pd_factor_train``).
        pd_factor_refine: PD stride of the masked network inside R3 (official: 1).
        num_masks: k, the number of disjoint masks = inference branches (paper: 2).
        partition: ``"uniform"`` (official) or ``"balanced"`` (supplement 1.2).
        masking: ``"complementary"`` (mask ratio 1/k) or ``"excessive"`` (mask ratio
            (k-1)/k, supplement Eq. 2: branch i sees only set i; every pixel is the mean of
            the k-1 branches that hid it).
        mask_fill: value of hidden pixels in the backbone's input: ``"zero"`` (the paper) or
            ``"neighbour_mean"`` (mean of the visible neighbours; faster convergence).
        loss_branches: ``"first"`` (the paper: one backbone pass per step) or ``"all"``.
        refine_passes: R3 passes (8).
        refine_ratio: R3 replacement ratio (0.16).
        smoothness_prior: L_p in L_t (``"tv_l1"``, ``"tv_l2"``, ``"tv_isotropic"``).
        smoothness_weight: lambda in L_t (0.01).
        colour_weight: weight of the optional colour-consistency term in L_t (0: off).
        colour_sigma: scale of that term's low-pass filter, in pixels.
        pad_mode: how sizes that are not multiples of the PD factor are extended.

    Example:
        >>> from amsnet.nets import create_net
        >>> method = AMSNet(create_net("dncnn", preset="small"))
        >>> noisy = torch.rand(1, 3, 37, 41)
        >>> method.denoise(noisy).shape
        torch.Size([1, 3, 37, 41])
    """

    # Stages: ``B``, L_m (:meth:`training_loss`); ``P``, L_t (:meth:`finetune_loss`).
    settings_class = AMSNetConfig
    settings: AMSNetConfig
    description = "an AMSNet model"

    def __init__(
        self,
        backbone: nn.Module,
        *,
        pd_factor_train: int = 5,
        pd_factor_eval: int = 2,
        pd_factor_finetune: int | None = None,
        pd_factor_refine: int = 1,
        num_masks: int = 2,
        partition: str = "uniform",
        masking: str = "complementary",
        mask_fill: str = "zero",
        loss_branches: str = "first",
        refine_passes: int = 8,
        refine_ratio: float = 0.16,
        smoothness_prior: str = "tv_l1",
        smoothness_weight: float = 0.01,
        colour_weight: float = 0.0,
        colour_sigma: float = 3.0,
        pad_mode: str = "reflect",
    ) -> None:
        super().__init__(backbone, constructor_arguments(locals()))

    # -- the scheme's building blocks -------------------------------------------------------

    @property
    def tile_multiple(self) -> int:
        """Tiles align to the inference PD factor and to R3's, each times the backbone's
        size multiple, so neither B nor E pads a tile."""
        multiple = int(getattr(self.backbone, "size_multiple", 1))
        return math.lcm(super().tile_multiple, self.settings.pd_factor_refine * multiple)

    @property
    def accepts_pixel_key(self) -> bool:
        """Only the uniform partition can be keyed to pixel positions."""
        return self.settings.partition == "uniform"

    def _visible(self, assignment: torch.Tensor) -> torch.Tensor:
        """``(k, N, 1, h, w)``: True where branch i sees the pixel."""
        parts = hidden_masks(assignment, self.settings.num_masks)
        return ~parts if self.settings.masking == "complementary" else parts

    def _hide(self, sub: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """Backbone inputs ``(b * N, C, h, w)`` of ``b`` branches: sub-images with hidden pixels
        replaced (``visible`` is ``(b, N, 1, h, w)``)."""
        branches, n = visible.shape[:2]
        images = sub.unsqueeze(0).expand(branches, *sub.shape).reshape(branches * n, *sub.shape[1:])
        return hide(
            images, visible.reshape(branches * n, 1, *sub.shape[2:]), self.settings.mask_fill
        )

    def _stitch(self, outputs: torch.Tensor, assignment: torch.Tensor) -> torch.Tensor:
        """Combine branch outputs ``(k, N, C, h, w)`` so that every pixel comes from the
        branches that hid it (main paper Eq. 5 / supplement Eq. 2)."""
        index = assignment.unsqueeze(0).expand(1, *outputs.shape[1:])
        # The output of the branch whose set holds the pixel: in the complementary scheme that
        # branch hid it; in the excessive scheme it is the one branch that saw it.
        own = outputs.gather(0, index).squeeze(0)
        if self.settings.masking == "complementary":
            return own
        return (outputs.sum(dim=0) - own) / (self.settings.num_masks - 1)

    def _sub_images(self, x: torch.Tensor, factor: int) -> tuple[torch.Tensor, Padding]:
        padded, padding = pad_to_multiple(x, factor, self.settings.pad_mode)
        return pd_down(padded, factor), padding

    def masked_denoise(
        self,
        noisy: torch.Tensor,
        factor: int,
        masks: torch.Generator | PixelKey,
        streams: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """All k branches at PD stride ``factor``: the paper's I_DN (differentiable).

        Args:
            noisy: ``(B, C, H, W)`` in ``[0, 1]``, any H and W.
            factor: PD stride (``pd_factor_eval`` for inference, 1 inside R3).
            masks: a generator to draw the partition from, or a :class:`PixelKey` to key it
                to absolute pixel positions (tiled inference).
            streams: with a ``PixelKey``, ``(B,)`` ids that make the images' partitions
                independent (default: the image numbers).

        Returns:
            ``(B, C, H, W)``: each pixel predicted by the branch(es) that hid it.
        """
        k = self.settings.num_masks
        sub, padding = self._sub_images(noisy, factor)
        n, c, h, w = sub.shape
        if isinstance(masks, PixelKey):
            if streams is None:
                streams = torch.arange(noisy.shape[0], device=noisy.device)
            assignment = keyed_partition(masks, streams, h, w, k, factor)
        else:
            assignment = random_partition(
                n, h, w, k, generator=masks, mode=self.settings.partition, device=noisy.device
            )
        inputs = self._hide(sub, self._visible(assignment))
        # One backbone call for all k branches: (k * N) images instead of a Python loop.
        outputs = run_backbone(self.backbone, inputs, self.backbone_dtype)
        outputs = outputs.reshape(k, n, c, h, w)
        return crop(pd_up(self._stitch(outputs, assignment), factor), padding)

    # -- objectives -------------------------------------------------------------------------

    def objective(
        self, batch: Batch, stage: Stage = "B", *, generator: torch.Generator
    ) -> LossOutput:
        """L_m in stage B (:meth:`training_loss`), L_t in stage P (:meth:`finetune_loss`),
        of ``batch.noisy`` only.

        Raises:
            ConfigError: an unknown stage.
        """
        require_stage(self, stage)
        if stage == "P":
            return self.finetune_loss(batch.noisy, generator=generator)
        return self.training_loss(batch.noisy, generator=generator)

    def training_loss(self, noisy: torch.Tensor, *, generator: torch.Generator) -> LossOutput:
        """L_m: masked L1 in PD space, one random partition per sub-image (supplement Eq. 1).

        Args:
            noisy: training crops ``(B, C, H, W)`` in ``[0, 1]``; H and W should be multiples
                of ``pd_factor_train`` (other sizes are padded and the padding is excluded
                from the loss).
            generator: source of the random partition.

        Returns:
            :class:`LossOutput` with ``terms["mask_l1"]``.
        """
        check_bchw(noisy, "noisy")
        factor = self.settings.pd_factor_train
        sub, padding = self._sub_images(noisy, factor)
        n, c, h, w = sub.shape
        assignment = random_partition(
            n,
            h,
            w,
            self.settings.num_masks,
            generator=generator,
            mode=self.settings.partition,
            device=noisy.device,
        )
        visible = self._visible(assignment)
        if self.settings.loss_branches == "first":
            visible = visible[:1]
        branches = visible.shape[0]
        hidden = self._hide(sub, visible)
        outputs = run_backbone(self.backbone, hidden, self.backbone_dtype)
        outputs = outputs.reshape(branches, n, c, h, w)
        scored = ~visible
        if any(padding):
            scored = scored & self._inside(noisy, factor, padding)
        loss = masked_l1(outputs, sub.unsqueeze(0), scored)
        return LossOutput(loss=loss, terms={"mask_l1": loss.detach()})

    def _inside(self, noisy: torch.Tensor, factor: int, padding: Padding) -> torch.Tensor:
        """PD-space mask ``(N, 1, h, w)`` of the pixels that are not padding."""
        ones = torch.ones(noisy.shape[0], 1, *noisy.shape[-2:], device=noisy.device)
        return pd_down(pad(ones, padding, "constant", 0.0), factor) > 0.5

    def finetune_loss(self, noisy: torch.Tensor, *, generator: torch.Generator) -> LossOutput:
        """L_t of AMSNet-P: ``|I_DN - I_N|_1 + lambda * L_p(I_DN)`` (+ colour term).

        Every pixel of I_DN was predicted while hidden, so the L1 term over all pixels cannot
        be minimised by copying the input. The PD stride is ``pd_factor_finetune``.

        Args:
            noisy: crops ``(B, C, H, W)`` in ``[0, 1]`` (paper: 320x320).
            generator: source of the random partition.

        Returns:
            :class:`LossOutput` with terms ``fidelity_l1``, ``smoothness`` and, when enabled,
            ``colour``.
        """
        check_bchw(noisy, "noisy")
        s = self.settings
        factor = s.pd_factor_finetune or s.pd_factor_train
        denoised = self.masked_denoise(noisy, factor, generator)
        fidelity = l1(denoised, noisy)
        smoothness = total_variation(denoised, s.smoothness_prior)
        loss = fidelity + s.smoothness_weight * smoothness
        terms = {"fidelity_l1": fidelity.detach(), "smoothness": smoothness.detach()}
        if s.colour_weight > 0:
            colour = colour_consistency(denoised, noisy, s.colour_sigma)
            loss = loss + s.colour_weight * colour
            terms["colour"] = colour.detach()
        return LossOutput(loss=loss, terms=terms)

    # -- inference --------------------------------------------------------------------------

    def denoise(
        self,
        noisy: torch.Tensor,
        *,
        generator: torch.Generator | None = None,
        refine: bool = False,
        refine_batch: int | None = None,
        pixel_key: PixelKey | None = None,
    ) -> torch.Tensor:
        """Denoise with all k branches at ``pd_factor_eval``, optionally refined by R3.

        Runs without gradients, with the backbone in eval mode (its previous mode is restored).

        Args:
            noisy: ``(B, C, H, W)`` in ``[0, 1]``, any H and W.
            generator: source of the partitions and R3 masks; ``None`` uses a fixed seed (0)
                on the input's device, so the result is deterministic.
            refine: apply R3 (the "-E" variants).
            refine_batch: run at most this many R3 passes per backbone call; default: as
                many as keep a call within a pixel limit per device
                (:func:`amsnet.ops.refine.default_passes_per_call`: one pass for a 256x256
                image on the CPU). Each pass costs the memory of the base pass. The random
                draws come in another order for another value, so the result differs by a
                draw (not in distribution).
            pixel_key: key every random choice to absolute pixel positions instead of drawing
                it from ``generator`` (:class:`amsnet.ops.masks.PixelKey`): the result then
                does not depend on tiling, chunking or device. Needs ``partition="uniform"``.

        Returns:
            Denoised ``(B, C, H, W)`` (not clamped).
        """
        check_bchw(noisy, "noisy")
        s = self.settings
        if pixel_key is not None and s.partition != "uniform":
            raise ConfigError(
                "pixel-keyed masks (tiled inference) need partition='uniform'; a balanced "
                "split needs the whole sub-image: denoise without tiles"
            )
        g = generator if generator is not None else default_generator(noisy.device)
        masks: torch.Generator | PixelKey = pixel_key if pixel_key is not None else g
        batch_size = noisy.shape[0]

        def refine_fn(batch: torch.Tensor, passes: range) -> torch.Tensor:
            streams = refine_streams(REFINE_PARTITION_STREAM, passes, batch_size, batch.device)
            return self.masked_denoise(batch, s.pd_factor_refine, masks, streams)

        with torch.no_grad(), eval_mode(self.backbone):
            denoised = self.masked_denoise(noisy, s.pd_factor_eval, masks)
            if refine:
                denoised = random_replace_refine(
                    noisy,
                    denoised,
                    refine_fn,
                    generator=None if pixel_key is not None else g,
                    pixel_key=pixel_key,
                    passes=s.refine_passes,
                    ratio=s.refine_ratio,
                    passes_per_call=refine_batch,
                    per_channel=False,
                )
        return denoised
