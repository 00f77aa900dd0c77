"""Validated configuration of methods and networks (pydantic; imports no torch).

Typos are errors (``extra="forbid"``), values are range-checked, and every error says which key
to change. The same models validate YAML files, command-line overrides, checkpoint headers and
the keyword arguments of :class:`amsnet.AMSNet` / :class:`amsnet.APBSN`.
"""

from __future__ import annotations

import difflib
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator, ValidationError

from amsnet.errors import ConfigError

PartitionMode = Literal["uniform", "balanced"]
MaskFill = Literal["zero", "neighbour_mean"]
Masking = Literal["complementary", "excessive"]
LossBranches = Literal["first", "all"]
SmoothnessPrior = Literal["tv_l1", "tv_l2", "tv_isotropic"]
PadMode = Literal["reflect", "replicate", "circular"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


class AMSNetConfig(_Strict):
    """Settings of the asymmetric mask scheme (AMSNet, ECCV 2024)."""

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


MethodConfig = Annotated[AMSNetConfig | APBSNConfig, Field(discriminator="name")]


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


def validate(model: type[BaseModel], data: Any, where: str) -> Any:
    """Validate ``data`` against ``model``; raise :class:`ConfigError` naming ``where``."""
    try:
        return model.model_validate(data)
    except ValidationError as error:
        known = _field_names(model)
        raise ConfigError(f"invalid configuration in {where}:\n{_describe(error, known)}") from None


def _field_names(model: type[BaseModel]) -> set[str]:
    """Every field name of ``model`` and of the config models nested in it."""
    names: set[str] = set()
    for candidate in (model, AMSNetConfig, APBSNConfig, ModelConfig):
        names.update(candidate.model_fields)
    return names


def _describe(error: ValidationError, known: set[str]) -> str:
    lines = []
    for item in error.errors():
        location = ".".join(str(part) for part in item["loc"]) or "(top level)"
        message = item["msg"]
        if item["type"] == "extra_forbidden":
            key = str(item["loc"][-1])
            close = difflib.get_close_matches(key, sorted(known), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else ""
            message = f"unknown key {key!r}{hint}"
        lines.append(f"  {location}: {message}")
    return "\n".join(lines)
