"""Validated configuration of methods, networks and training experiments (pydantic; no torch).

Typos are errors (``extra="forbid"``), values are range-checked, and every error says which key
to change. The same models validate YAML files, command-line overrides, checkpoint headers and
the keyword arguments of :class:`amsnet.AMSNet` / :class:`amsnet.APBSN`.

An experiment file (``amsnet train CONFIG``) has five sections, validated by
:class:`ExperimentConfig`: ``experiment`` (name, seed, output folder), ``method`` (one of
:class:`AMSNetConfig`, :class:`APBSNConfig`, :class:`SupervisedConfig`, chosen by ``name``),
``net`` (:class:`NetConfig`), ``data`` (``train`` and optional ``val``) and ``train``
(stage, steps, optimiser, schedule, precision, checkpoints). :func:`load_config` reads one,
merges ``key.path=value`` overrides and validates the result; :func:`dump_config` writes the
resolved file. Paths are kept as given (relative ones are relative to the working directory)
and are not checked here: a missing folder is reported when the data is opened.
"""

from __future__ import annotations

import difflib
import math
import os
import types
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Any, ClassVar, get_args, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    model_validator,
    ValidationError,
)

from amsnet.errors import ConfigError

PartitionMode = Literal["uniform", "balanced"]
MaskFill = Literal["zero", "neighbour_mean"]
Masking = Literal["complementary", "excessive"]
LossBranches = Literal["first", "all"]
SmoothnessPrior = Literal["tv_l1", "tv_l2", "tv_isotropic"]
PadMode = Literal["reflect", "replicate", "circular"]
Stage = Literal["B", "P"]
"""``B``: a method's training objective; ``P``: AMSNet's fine-tuning objective L_t."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class AMSNetConfig(_Strict):
    """Settings of the asymmetric mask scheme (AMSNet, ECCV 2024)."""

    stages: ClassVar[tuple[Stage, ...]] = ("B", "P")
    """The stages the method has an objective for (its class reads them from here)."""

    name: Literal["amsnet"] = "amsnet"
    pd_factor_train: int = Field(5, ge=1, le=16)
    """PD stride while training with L_m (the paper's P_5)."""
    pd_factor_eval: int = Field(2, ge=1, le=16)
    """PD stride at inference (the paper's P_2, following AP-BSN)."""
    pd_factor_finetune: int | None = Field(None, ge=1, le=16)
    """PD stride of the L_t fine-tuning output; ``None`` uses ``pd_factor_train`` (the paper
    does not say which; see docs/concepts.md)."""
    pd_factor_refine: int = Field(1, ge=1, le=16)
    """PD stride of the masked network inside R3 (1, full resolution, as the official code)."""
    num_masks: int = Field(2, ge=2, le=64)
    """k: the number of disjoint masks and of inference branches."""
    partition: PartitionMode = "uniform"
    """``uniform``: i.i.d. branch index per pixel (official code); ``balanced``: each branch
    gets floor(n/k) or ceil(n/k) pixels of every sub-image (supplement 1.2)."""
    masking: Masking = "complementary"
    """``complementary``: branch i hides set i (mask ratio 1/k, the paper's main scheme);
    ``excessive``: branch i sees only set i (mask ratio (k-1)/k, supplement Eq. 2)."""
    mask_fill: MaskFill = "zero"
    """Value of hidden pixels in the backbone's input: ``zero`` (the paper) or
    ``neighbour_mean`` (mean of the visible 8-neighbours; converges faster)."""
    loss_branches: LossBranches = "first"
    """Branches entering L_m: ``first`` (one backbone pass, as the paper) or ``all``."""
    refine_passes: int = Field(8, ge=1, le=64)
    """R3: number of re-denoisings averaged."""
    refine_ratio: float = Field(0.16, gt=0.0, lt=1.0)
    """R3: fraction of pixels put back to their noisy value in each pass."""
    smoothness_prior: SmoothnessPrior = "tv_l1"
    """L_p of the fine-tuning loss L_t (the paper's exact prior is unconfirmed)."""
    smoothness_weight: float = Field(0.01, ge=0.0)
    """lambda in L_t = |I_DN - I_N|_1 + lambda * L_p(I_DN)."""
    colour_weight: float = Field(0.0, ge=0.0)
    """Weight of the optional colour-consistency term of L_t (0 = off)."""
    colour_sigma: float = Field(3.0, gt=0.0)
    """Gaussian scale (pixels) of the colour-consistency low-pass filter."""
    pad_mode: PadMode = "reflect"
    """How sizes that are not multiples of the PD factor are extended (then cropped back)."""

    @model_validator(mode="after")
    def _check_masking(self) -> AMSNetConfig:
        if self.masking == "excessive" and self.num_masks < 3:
            raise ValueError(
                "masking='excessive' hides (k-1)/k of the pixels in each branch and needs "
                "num_masks >= 3 (with k = 2 it is the same as 'complementary'); "
                "set num_masks to 3 or more, e.g. 4 for the supplement's 75% example"
            )
        return self


class APBSNConfig(_Strict):
    """Settings of AP-BSN (Lee et al., CVPR 2022): asymmetric PD around a blind-spot network."""

    stages: ClassVar[tuple[Stage, ...]] = ("B",)

    name: Literal["apbsn"] = "apbsn"
    pd_factor_train: int = Field(5, ge=1, le=16)
    """PD stride while training (AP-BSN's pd_a)."""
    pd_factor_eval: int = Field(2, ge=1, le=16)
    """PD stride at inference (AP-BSN's pd_b)."""
    pd_pad: int = Field(2, ge=0, le=16)
    """Zero padding around every mosaic tile, and reflect padding in R3 (AP-BSN's pd_pad)."""
    refine_passes: int = Field(8, ge=1, le=64)
    """R3: number of re-denoisings averaged (AP-BSN's R3_T)."""
    refine_ratio: float = Field(0.16, gt=0.0, lt=1.0)
    """R3: probability that an element takes its noisy value (AP-BSN's R3_p)."""
    value_scale: float = Field(255.0, gt=0.0)
    """The blind-spot network sees images multiplied by this (AP-BSN works in [0, 255])."""


class SupervisedConfig(_Strict):
    """A backbone trained on noisy/clean pairs with an L1 loss: the supervised ceiling.

    Not a self-supervised method: it needs clean targets, so it shows how far a self-supervised
    method trained on the same noisy images stays from what the same backbone reaches with
    ground truth.
    """

    stages: ClassVar[tuple[Stage, ...]] = ("B",)

    name: Literal["supervised"] = "supervised"


class DistilledConfig(_Strict):
    """A one-pass student trained on a teacher's outputs (:class:`amsnet.methods.Distilled`).

    ``teacher`` and ``teacher_variant`` record where its targets came from; inference needs
    neither.
    """

    stages: ClassVar[tuple[Stage, ...]] = ("B",)

    name: Literal["distilled"] = "distilled"
    teacher: str | None = None
    """The teacher: a shipped model's name or a weights file's name (provenance)."""
    teacher_variant: Literal["B", "E"] = "E"
    """The teacher output the student reproduces: ``E`` (with R3) or ``B``."""


_METHOD_CONFIGS = (AMSNetConfig, APBSNConfig, SupervisedConfig, DistilledConfig)
MethodConfig = Annotated[
    AMSNetConfig | APBSNConfig | SupervisedConfig | DistilledConfig, Field(discriminator="name")
]


class NetConfig(BaseModel):
    """A backbone: its registry ``name`` plus constructor keyword arguments.

    The arguments are checked against the constructor's signature when the network is built
    (``amsnet.build``), so a typo names the accepted keys there.
    """

    model_config = ConfigDict(extra="allow")

    name: str
    preset: str | None = None
    """A named preset (``paper``, ``small``) whose arguments the other keys override."""

    def kwargs(self) -> dict[str, Any]:
        """The constructor arguments (everything but ``name`` and ``preset``)."""
        return dict(self.model_extra or {})


class ModelConfig(_Strict):
    """What a weights file needs to rebuild its model: the method and the backbone."""

    method: MethodConfig
    net: NetConfig


# -- experiments (amsnet train) ------------------------------------------------------------

TrainDataKind = Literal[
    "noisy_folder", "sidd_medium", "paired_folder", "synthetic_camera", "distillation"
]
PairRule = Literal["polyu", "cc", "regex", "folders", "csv"]
NoiseLevel = Literal["low", "medium", "high"]
ValDataset = Literal["polyu", "cc", "folders", "sidd-val", "awgn", "camera"]
Precision = Literal["auto", "fp32", "bf16", "fp16"]
"""The backbone's floating-point precision (:mod:`amsnet.precision`)."""
PRECISIONS: tuple[str, ...] = get_args(Precision)
ScheduleName = Literal["cosine_restarts", "cosine", "step", "constant"]

MAX_DOWNSCALE_FACTOR = 8
"""The largest box-downscaling factor of ``data.train.downscale_factors``."""


def check_downscale_factors(factors: tuple[int, ...] | list[int]) -> None:
    """Raise :class:`~amsnet.errors.ConfigError` unless ``factors`` is a non-empty list of
    whole numbers from 1 to :data:`MAX_DOWNSCALE_FACTOR` (``data.train.downscale_factors``,
    :class:`amsnet.data.training_crops.TrainingCrops`)."""
    if not factors or any(isinstance(f, bool) or not isinstance(f, int) for f in factors):
        raise ConfigError(
            f"downscale_factors must be a non-empty list of whole numbers, got {factors!r}"
        )
    if not all(1 <= f <= MAX_DOWNSCALE_FACTOR for f in factors):
        raise ConfigError(
            f"downscale_factors must lie between 1 and {MAX_DOWNSCALE_FACTOR}, got {list(factors)}"
        )


def check_noise_scales(scales: tuple[float, ...] | list[float]) -> None:
    """Raise :class:`~amsnet.errors.ConfigError` unless ``scales`` is a non-empty list of
    numbers in ``[0, 1]`` (``data.train.noise_scales``,
    :class:`amsnet.data.training_crops.TrainingCrops`)."""
    if not scales or any(
        isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s)
        for s in scales
    ):
        raise ConfigError(f"noise_scales must be a non-empty list of numbers, got {scales!r}")
    if not all(0.0 <= s <= 1.0 for s in scales):
        raise ConfigError(
            f"noise_scales must lie between 0 and 1 (1: the noise as it is), got {list(scales)}"
        )


SKIMAGE_SOURCE = "skimage"
"""``data.train.source`` / ``data.val.root`` value naming the photos bundled with scikit-image."""

# Which optional keys of data.train each kind reads; a key set for another kind is an error,
# because it would silently do nothing.
_KIND_KEYS: dict[str, frozenset[str]] = {
    "noisy_folder": frozenset({"root", "include"}),
    "sidd_medium": frozenset({"root", "strict"}),
    "paired_folder": frozenset({"root", "clean_root", "rule", "noisy_pattern", "clean_pattern"}),
    "synthetic_camera": frozenset({"source", "noise_level", "noise_seed"}),
    "distillation": frozenset(
        {
            "root",
            "include",
            "teacher",
            "teacher_variant",
            "teacher_precision",
            "regions",
            "region_size",
        }
    ),
}
_KIND_REQUIRED: dict[str, tuple[str, ...]] = {
    "noisy_folder": ("root",),
    "sidd_medium": ("root",),
    "paired_folder": ("root",),
    "synthetic_camera": ("source",),
    "distillation": ("root", "teacher", "cache_dir"),
}


class ExperimentSettings(_Strict):
    """Name, seed and output folder of a training run."""

    name: str = Field("run", pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$")
    """The run's name: its folder is ``output_dir/name`` unless ``--out`` gives another."""
    seed: int = Field(0, ge=0)
    """Seeds the initial weights, the crops and the masks; the same seed gives the same run."""
    output_dir: str = "runs"
    """Folder that holds the run folders."""


class TrainDataConfig(_Strict):
    """The training crops: where they come from and how they are cut.

    ``kind``:

    * ``noisy_folder``: the noisy images of ``root`` (sub-folders included), self-supervised
      methods only;
    * ``sidd_medium``: SIDD Medium sRGB at ``root`` (``SIDD_Medium_Srgb`` or its ``Data``); the
      noisy images, plus their ground truth for ``method.name: supervised``;
    * ``paired_folder``: noisy/clean pairs of ``root`` matched by ``rule`` (see
      :class:`amsnet.data.pairs.PairedFolder`);
    * ``synthetic_camera``: clean photos (the folder ``source``, or ``"skimage"`` for those
      bundled with scikit-image) with synthetic camera noise of ``noise_level``, drawn once per
      photo from ``noise_seed`` (the noisy set is fixed, like a real one);
    * ``distillation``: ``regions`` square regions of the noisy images of ``root`` (filtered
      by ``include``), each paired with the ``teacher``'s ``teacher_variant`` output for it,
      computed once and kept in ``cache_dir`` (:mod:`amsnet.training.distillation`); for
      ``method.name: distilled``.

    Self-supervised methods only ever receive the noisy crops, whatever the kind.
    """

    kind: TrainDataKind
    root: str | None = None
    include: list[str] | None = None
    """``noisy_folder``: keep only the images whose path relative to ``root`` matches one of
    these glob patterns (e.g. ``polyu/OriginalImages/*_Real.JPG``, to leave the clean
    ``*_mean.JPG`` files of a paired folder out of a self-supervised pool)."""
    clean_root: str | None = None
    """``paired_folder`` with ``rule: folders``: the folder of clean images."""
    rule: PairRule = "folders"
    noisy_pattern: str | None = None
    clean_pattern: str | None = None
    strict: bool = True
    """``sidd_medium``: require the published 160-scene layout (``false`` for a partial copy)."""
    source: str | None = None
    noise_level: NoiseLevel = "medium"
    noise_seed: int = Field(0, ge=0)
    teacher: str | None = None
    """``distillation``: the teacher, a shipped model's name (``amsnet models``) or a weights
    file."""
    teacher_variant: Literal["B", "E"] = "E"
    """``distillation``: the teacher output to reproduce (``E``: with R3)."""
    teacher_precision: Precision = "fp32"
    """``distillation``: the precision of the teacher's backbone (:mod:`amsnet.precision`);
    the precision it resolves to is part of the cache key. float32 by default: the targets
    are made once and cached, the shipped student was distilled from float32 targets, and
    float32 targets measured better for adaptation (``docs/precision.md``)."""
    regions: int = Field(1024, ge=1, le=1_000_000)
    """``distillation``: how many regions of the pool the teacher denoises (drawn from
    ``experiment.seed``, images chosen in proportion to their area)."""
    region_size: int = Field(192, ge=16, le=4096)
    """``distillation``: side of a region (smaller for smaller images); training crops are cut
    inside regions, so it must be at least ``crop_size``."""
    crop_size: int = Field(160, ge=1)
    """Side of the square crops; a multiple of the method's PD factor."""
    batch_size: int = Field(4, ge=1)
    """Crops per step and per process (the global batch is this times the number of GPUs)."""
    workers: int = Field(2, ge=0)
    """DataLoader worker processes (0: load in the training process)."""
    cache_dir: str | None = None
    """Decode every image once into a memory-mapped file in this folder (large datasets)."""
    flips: bool = True
    """Random horizontal and vertical flips (official AMSNet augmentation)."""
    rotate: bool = False
    """Random quarter turns; with ``flips`` this is AP-BSN's augmentation (all 8 orientations,
    equally likely)."""
    sampling: Literal["area", "uniform"] = "area"
    """How a crop picks its image: proportionally to the image's area, or uniformly."""
    crops_per_epoch: int = Field(10_000, ge=1)
    """Length of an epoch, used in crop seeds and in the logged epoch number only."""
    downscale_factors: list[int] = Field(default_factory=lambda: [1], min_length=1)
    """Box-downscaling factors each crop draws from uniformly (repeat one to weight it): a crop
    ``f`` times larger, averaged over ``f x f`` blocks, noisy and target alike
    (:class:`amsnet.data.training_crops.TrainingCrops`). ``[1]``: full resolution only."""
    noise_scales: list[float] = Field(default_factory=lambda: [1.0], min_length=1)
    """Noise-strength factors each crop draws from uniformly (repeat one to weight it), in
    ``[0, 1]``: the noisy crop becomes ``target + s (noisy - target)``, the same noise ``s``
    times weaker. Needs targets (a clean image or a teacher's output). ``[1]``: as it is."""

    @model_validator(mode="after")
    def _check_kind(self) -> TrainDataConfig:
        for key in _KIND_REQUIRED[self.kind]:
            if getattr(self, key) is None:
                raise ValueError(f"data.train.kind {self.kind} needs data.train.{key}")
        used = _KIND_KEYS[self.kind]
        for key in sorted(set().union(*_KIND_KEYS.values()) - used):
            # A default value is harmless (and is what a dumped configuration holds).
            if getattr(self, key) != type(self).model_fields[key].default:
                users = sorted(k for k, keys in _KIND_KEYS.items() if key in keys)
                raise ValueError(
                    f"data.train.{key} is only read by kind {' / '.join(users)}, not by "
                    f"{self.kind}; remove it or change data.train.kind"
                )
        check_downscale_factors(self.downscale_factors)
        check_noise_scales(self.noise_scales)
        widest = self.crop_size * max(self.downscale_factors)
        if self.kind == "distillation" and self.region_size < widest:
            raise ValueError(
                f"data.train.region_size {self.region_size} is smaller than crop_size "
                f"{self.crop_size} x the largest downscale factor "
                f"{max(self.downscale_factors)}; crops are cut inside regions: raise "
                f"region_size to {widest} or lower crop_size"
            )
        if self.kind == "paired_folder":
            if self.rule == "folders" and self.clean_root is None:
                raise ValueError(
                    "data.train.rule folders needs data.train.clean_root, the folder of clean "
                    "images with the same relative names as those in root"
                )
            if self.rule == "regex" and (self.noisy_pattern is None or self.clean_pattern is None):
                raise ValueError(
                    "data.train.rule regex needs noisy_pattern and clean_pattern, regular "
                    "expressions with a group named key"
                )
        return self


class ValDataConfig(_Strict):
    """Validation pairs, a benchmark of :func:`amsnet.data.benchmarks.load_pairs`, loaded once.

    ``limit`` images are spread evenly over the *whole* set (the official AMSNet fit validates
    on the first SIDD image's 32 blocks only). ``dataset: camera`` with ``root: skimage`` uses
    photos bundled with scikit-image that the ``synthetic_camera`` training source does not use.
    """

    dataset: ValDataset
    root: str
    clean_root: str | None = None
    """``folders``: the folder of clean images."""
    sigma: float | None = Field(None, ge=0)
    """``awgn``: noise standard deviation on the 0-255 scale."""
    level: NoiseLevel = "medium"
    """``camera``: the synthetic noise level."""
    noise_seed: int = Field(0, ge=0)
    """``awgn`` / ``camera``: seed of the synthetic noise (fixed per image)."""
    limit: int | None = Field(None, ge=1)
    """Validate on this many images spread over the whole set (``None``: all)."""
    samples: int = Field(2, ge=0)
    """Write ``noisy | denoised | clean`` crops of this many images at every validation."""
    strict: bool = True
    """``sidd-val``: require the published 40 x 32 blocks."""

    @model_validator(mode="after")
    def _check_dataset(self) -> ValDataConfig:
        if self.dataset == "folders" and self.clean_root is None:
            raise ValueError("data.val.dataset folders needs data.val.clean_root")
        if self.dataset == "awgn" and self.sigma is None:
            raise ValueError("data.val.dataset awgn needs data.val.sigma (0-255 scale), e.g. 25")
        return self


class DataConfig(_Strict):
    """Training data and optional validation data."""

    train: TrainDataConfig
    val: ValDataConfig | None = None


class OptimizerConfig(_Strict):
    """Adam or AdamW (the paper: AdamW, lr 1e-4, betas (0.9, 0.999), no weight decay)."""

    name: Literal["adamw", "adam"] = "adamw"
    lr: float = Field(1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(0.0, ge=0)
    eps: float = Field(1e-8, gt=0)

    @model_validator(mode="after")
    def _check_betas(self) -> OptimizerConfig:
        if not all(0.0 <= beta < 1.0 for beta in self.betas):
            raise ValueError(f"train.optimizer.betas must lie in [0, 1), got {self.betas}")
        return self


class ScheduleConfig(_Strict):
    """The learning rate as a function of the step (see :mod:`amsnet.training.schedule`).

    * ``constant``: ``lr`` throughout;
    * ``cosine``: one cosine decay from ``lr`` to ``min_lr`` over the run;
    * ``cosine_restarts``: cosine decays of ``period`` steps, each restart's period
      ``period_mult`` times the previous one (PyTorch's ``CosineAnnealingWarmRestarts``
      stepped every iteration: ``T_0 = period``, ``T_mult = period_mult``);
    * ``step``: multiplied by ``gamma`` every ``step_size`` steps.

    ``warmup_steps`` ramps the rate linearly from ``lr / warmup_steps`` up to the schedule.
    """

    name: ScheduleName = "constant"
    period: int | None = Field(None, ge=1)
    period_mult: int = Field(1, ge=1)
    min_lr: float = Field(0.0, ge=0)
    step_size: int | None = Field(None, ge=1)
    gamma: float = Field(0.1, gt=0, le=1)
    warmup_steps: int = Field(0, ge=0)

    @model_validator(mode="after")
    def _check_fields(self) -> ScheduleConfig:
        if self.name == "cosine_restarts" and self.period is None:
            raise ValueError("train.schedule cosine_restarts needs period (steps per cycle)")
        if self.name == "step" and self.step_size is None:
            raise ValueError("train.schedule step needs step_size (steps between decays)")
        return self


class TrainConfig(_Strict):
    """How long and how to optimise, and what to write when."""

    stage: Stage = "B"
    """``B``: the method's training loss (AMSNet's L_m, AP-BSN's L1, supervised L1); ``P``:
    AMSNet's fine-tuning loss L_t (AMSNet-P), normally from stage-B weights (``init``)."""
    steps: int = Field(ge=1)
    """Optimisation steps of the whole run (resuming continues up to this number)."""
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    grad_clip: float | None = Field(None, gt=0)
    """Clip the gradient norm to this value (``None``: no clipping)."""
    precision: Precision = "auto"
    """The backbone's precision while training (:mod:`amsnet.precision`; the losses, masks
    and weights stay float32): ``auto`` = bfloat16 on a GPU that has it (else float16, with
    loss scaling) and on a CPU with native bfloat16 for networks it speeds up, float32
    elsewhere. Formerly ``amp`` (whose ``off`` is ``fp32``), still read."""
    ema_decay: float | None = Field(None, gt=0, lt=1)
    """Keep an exponential moving average of the weights (e.g. 0.999); validation and the
    saved weights then use it."""
    init: str | None = None
    """A ``.safetensors`` weights file to start from (stage P: the stage-B weights)."""
    log_every: int = Field(50, ge=1)
    """Steps between log lines / CSV rows (and between checks of the loss on the host)."""
    val_every: int = Field(1000, ge=1)
    """Steps between validations (needs ``data.val``)."""
    checkpoint_every: int = Field(1000, ge=1)
    """Steps between writes of ``last.safetensors`` and the resume state ``state.pt``."""
    max_bad_steps: int = Field(20, ge=1)
    """Stop when the loss was not finite for this many steps in a row."""
    device: str = "auto"
    """``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps`` (under torchrun: one GPU per rank)."""
    tensorboard: bool = True
    """Also write TensorBoard logs when the ``tensorboard`` package is installed."""

    @model_validator(mode="before")
    @classmethod
    def _amp_renamed(cls, data: Any) -> Any:
        """Read the former ``amp`` key (``off`` = ``fp32``) as ``precision``."""
        if not isinstance(data, dict) or "amp" not in data:
            return data
        if "precision" in data:
            raise ValueError("give train.precision only (train.amp is its former name)")
        data = dict(data)
        value = data.pop("amp")
        # YAML 1.1 reads an unquoted off / on as a boolean.
        if isinstance(value, bool):
            value = "auto" if value else "off"
        data["precision"] = "fp32" if value == "off" else value
        return data


class ExperimentConfig(_Strict):
    """A whole training experiment: what ``amsnet train CONFIG`` reads."""

    experiment: ExperimentSettings = ExperimentSettings()
    method: MethodConfig
    net: NetConfig
    data: DataConfig
    train: TrainConfig

    @model_validator(mode="after")
    def _check_consistency(self) -> ExperimentConfig:
        method = self.method
        crop = self.data.train.crop_size
        distilling = self.data.train.kind == "distillation"
        if isinstance(method, DistilledConfig) != distilling:
            raise ValueError(
                "method distilled trains on a teacher's outputs: it needs data.train.kind "
                "distillation, and that kind serves only method distilled (amsnet distill "
                "writes such a configuration)"
            )
        stage = self.train.stage
        if stage not in method.stages:
            able = [m.model_fields["name"].default for m in _METHOD_CONFIGS if stage in m.stages]
            raise ValueError(
                f"train.stage {stage} (fine-tuning with L_t) exists only for method "
                f"{', '.join(able)}, not {method.name}; set method.name: {able[0]} or "
                "train.stage: B"
            )
        if isinstance(method, SupervisedConfig) and self.data.train.kind == "noisy_folder":
            raise ValueError(
                "method supervised trains on noisy/clean pairs but data.train.kind "
                "noisy_folder has no clean images; use sidd_medium, paired_folder or "
                "synthetic_camera"
            )
        factor, key = self.crop_multiple()
        if crop % factor:
            lower = crop - crop % factor
            raise ValueError(
                f"data.train.crop_size {crop} is not a multiple of method.{key} {factor}; "
                f"use {lower or factor} or {lower + factor}"
            )
        return self

    def crop_multiple(self) -> tuple[int, str]:
        """The PD factor training crops must be a multiple of (1 without PD), and the
        ``method`` key it comes from (``pd_factor_finetune`` in stage P when set)."""
        method = self.method
        if not isinstance(method, AMSNetConfig | APBSNConfig):
            return 1, "pd_factor_train"
        finetune = getattr(method, "pd_factor_finetune", None) if self.train.stage == "P" else None
        if finetune is not None:
            return finetune, "pd_factor_finetune"
        return method.pd_factor_train, "pd_factor_train"

    def weights_config(self) -> ModelConfig:
        """The ``method`` and ``net`` sections: what a weights file stores."""
        return ModelConfig(method=self.method, net=self.net)


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` naming ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError(f"invalid configuration in {where}:\n{_describe(error, model)}") from None


def load_config(path: str | os.PathLike[str], overrides: Sequence[str] = ()) -> ExperimentConfig:
    """Read an experiment YAML file, apply ``key.path=value`` overrides, validate.

    Args:
        path: the YAML file.
        overrides: strings such as ``"train.optimizer.lr=1e-5"`` or
            ``"data.train.root=/data/SIDD"``; the value is read as a YAML scalar or list
            (``null``, ``true``, ``3``, ``[0.9, 0.99]``), missing sections are created.

    Returns:
        The validated :class:`ExperimentConfig`.

    Raises:
        ConfigError: a missing or unreadable file, a malformed override, or an invalid
            configuration (unknown keys name the accepted ones and the closest match).

    Example:
        >>> load_config("configs/cpu/amsnet.yaml", ["train.steps=10"])  # doctest: +SKIP
    """
    import yaml

    file = Path(path)
    if not file.is_file():
        raise ConfigError(f"config file {file} does not exist; check the path")
    try:
        data = yaml.safe_load(file.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read the config file {file} ({error})") from None
    except yaml.YAMLError as error:
        raise ConfigError(f"{file} is not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise ConfigError(
            f"{file} must hold a mapping with the sections experiment, method, net, data and "
            f"train; found {type(data).__name__}"
        )
    where = str(file)
    if overrides:
        data = apply_overrides(data, overrides)
        where += f" with overrides {list(overrides)}"
    return validate(ExperimentConfig, data, where)


def apply_overrides(data: dict[str, Any], overrides: Sequence[str]) -> dict[str, Any]:
    """A copy of ``data`` with every ``key.path=value`` override merged in.

    Raises:
        ConfigError: an override without ``=`` or with an empty key, or a path that goes
            through a value that is not a section.

    Example:
        >>> apply_overrides({"train": {"steps": 5}}, ["train.steps=7", "train.precision=bf16"])
        {'train': {'steps': 7, 'precision': 'bf16'}}
    """
    import copy

    import yaml

    merged = copy.deepcopy(data)
    for override in overrides:
        key, separator, text = override.partition("=")
        parts = key.strip().split(".")
        if not separator or not all(parts):
            raise ConfigError(
                f"override {override!r} must look like section.key=value, e.g. "
                "train.optimizer.lr=1e-5"
            )
        try:
            value = yaml.safe_load(text) if text.strip() else None
        except yaml.YAMLError as error:
            raise ConfigError(
                f"override {override!r}: the value is not valid YAML ({error})"
            ) from None
        section = merged
        for depth, part in enumerate(parts[:-1]):
            child = section.get(part)
            if child is None:
                child = section[part] = {}
            if not isinstance(child, dict):
                where = ".".join(parts[: depth + 1])
                raise ConfigError(
                    f"override {override!r}: {where} is a value ({child!r}), not a section"
                )
            section = child
        section[parts[-1]] = value
    return merged


def dump_config(config: ExperimentConfig, path: str | os.PathLike[str]) -> Path:
    """Write the resolved configuration (every default filled in) as YAML, atomically."""
    import yaml

    from amsnet.atomic import atomic_path

    text = yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    """The pydantic models an annotation can hold (through Optional, unions, Annotated)."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    origin = typing.get_origin(annotation)
    if origin is Annotated:
        return _models_in(typing.get_args(annotation)[0])
    if origin is typing.Union or origin is types.UnionType:
        return [m for arg in typing.get_args(annotation) for m in _models_in(arg)]
    return []


def _model_at(model: type[BaseModel], location: Sequence[Any]) -> type[BaseModel] | None:
    """The model that the error location ``location`` (without the key itself) points into.

    A discriminated union adds its tag to the location (``method.amsnet.num_mask``); the tag
    picks the member whose ``name`` default it is.
    """
    current: type[BaseModel] | None = model
    candidates: list[type[BaseModel]] = []
    for part in location:
        if candidates:
            tagged = [m for m in candidates if m.model_fields.get("name") is not None]
            chosen = [m for m in tagged if m.model_fields["name"].default == part]
            current, candidates = (chosen[0], []) if chosen else (None, [])
            if current is not None:
                continue
        if current is None or part not in current.model_fields:
            return None
        found = _models_in(current.model_fields[part].annotation)
        if len(found) == 1:
            current = found[0]
        elif found:
            current, candidates = None, found
        else:
            return None
    return current


def _describe(error: ValidationError, model: type[BaseModel]) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            key = str(item["loc"][-1])
            owner = _model_at(model, item["loc"][:-1])
            accepted = sorted(owner.model_fields) if owner is not None else []
            close = difflib.get_close_matches(key, accepted or sorted(_ALL_FIELDS), n=1)
            message = f"unknown key {key!r}"
            if close:
                message += f"; did you mean {close[0]!r}?"
            if accepted:
                message += f" Accepted keys: {', '.join(accepted)}"
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)


_ALL_FIELDS: frozenset[str] = frozenset(
    name
    for candidate in (
        AMSNetConfig,
        APBSNConfig,
        SupervisedConfig,
        DistilledConfig,
        ModelConfig,
        ExperimentConfig,
        ExperimentSettings,
        TrainDataConfig,
        ValDataConfig,
        DataConfig,
        OptimizerConfig,
        ScheduleConfig,
        TrainConfig,
    )
    for name in candidate.model_fields
)
