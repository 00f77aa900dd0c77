"""Settings of the quality study (:mod:`amsnet.studies.bench.quality`): its rows, its labels, the
method settings per kind of noise, and the validated :class:`StudyConfig`."""

from __future__ import annotations

import hashlib
import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator

from amsnet.config import AMSNetConfig, APBSNConfig, validate

METHODS = (
    "noisy",
    "bm3d-oracle",
    "bm3d-estimated",
    "apbsn-r3",
    "amsnet-b",
    "amsnet-b-e",
    "amsnet-p",
    "amsnet-p-e",
    "supervised",
)
# The identity-mapping ablation of supplement section 1.8: AP-BSN's loss and AMSNet's scheme,
# each with an ordinary network (DBSNl with regular instead of dilated convolutions and no
# masked centre tap, so its receptive field includes the pixel it predicts).
ABLATION = ("apbsn-ordinary", "amsnet-ordinary")
ALL_METHODS = METHODS + ABLATION
LABELS = {
    "noisy": "noisy input",
    "bm3d-oracle": "BM3D (oracle sigma)",
    "bm3d-estimated": "BM3D (estimated sigma)",
    "apbsn-r3": "AP-BSN + R3",
    "amsnet-b": "AMSNet-B",
    "amsnet-b-e": "AMSNet-B-E",
    "amsnet-p": "AMSNet-P",
    "amsnet-p-e": "AMSNet-P-E",
    "supervised": "supervised (ceiling)",
    "apbsn-ordinary": "AP-BSN loss, ordinary network",
    "amsnet-ordinary": "AMSNet-B, ordinary network",
}
# Each trained model and the rows it produces (without R3, with R3).
MODELS = {
    "apbsn": ("apbsn-r3",),
    "amsnet-b": ("amsnet-b", "amsnet-b-e"),
    "amsnet-p": ("amsnet-p", "amsnet-p-e"),
    "supervised": ("supervised",),
    "apbsn-ordinary": ("apbsn-ordinary",),
    "amsnet-ordinary": ("amsnet-ordinary",),
}
REFINED = {"apbsn-r3", "amsnet-b-e", "amsnet-p-e"}
REAL_NOISE = ("polyu", "cc", "folders")
Dataset = Literal["polyu", "cc", "folders", "camera", "awgn"]

# AMSNet per kind of noise. At CPU-minute budgets the paper's PD 5 / 2 barely starts learning:
# measured on 4 PolyU crops with NAFNet (small) and 120 CPU s, PD 5 (160-pixel crops) made 29
# steps and ended at 28.8 dB (B) / 28.0 (B-E), PD 2 for training and none at inference made 662
# steps and reached 33.5 / 36.4 (noisy input: 37.4). So the study uses the zero-shot settings
# of amsnet.api (PD 2 / 1, hidden pixels filled by the mean of their visible neighbours) for
# real and synthetic camera noise; override with --set amsnet.pd_factor_train=5 ... for the
# paper's. AWGN is white: no PD at all, as the supplement's Table 2 ("P_1").
AMSNET_BY_NOISE: dict[str, dict[str, Any]] = {
    "real": {"pd_factor_train": 2, "pd_factor_eval": 1, "mask_fill": "neighbour_mean"},
    "camera": {"pd_factor_train": 2, "pd_factor_eval": 1, "mask_fill": "neighbour_mean"},
    "awgn": {"pd_factor_train": 1, "pd_factor_eval": 1, "mask_fill": "neighbour_mean"},
}
# AP-BSN keeps the paper's asymmetric PD on camera noise; white noise needs no PD.
APBSN_BY_NOISE: dict[str, dict[str, Any]] = {
    "real": {},
    "camera": {},
    "awgn": {"pd_factor_train": 1, "pd_factor_eval": 1, "pd_pad": 0},
}


class StudyConfig(BaseModel):
    """Settings of one quality study (typos are errors)."""

    model_config = ConfigDict(extra="forbid")

    dataset: Dataset
    root: str
    """Dataset folder: PolyU / CC crops, or clean images for ``camera`` / ``awgn``."""
    clean_root: str | None = None
    """Clean images for ``folders`` (same relative names as the noisy ones)."""
    sigma: float | None = Field(None, gt=0)
    """AWGN standard deviation on the 0-255 scale."""
    level: Literal["low", "medium", "high"] = "medium"
    """Synthetic camera-noise level."""
    images: int | None = Field(15, ge=1)
    """Use this many images, evenly spaced in name order (None: all)."""
    seeds: list[int] = Field(default_factory=lambda: [0, 1, 2], min_length=1)
    cpu_seconds: float = Field(240.0, gt=0)
    """Training budget of every trained model, in CPU seconds of this process."""
    crop: int = Field(64, ge=8)
    """Training crop side (strides above 2 use at least 24 pixels per PD sub-image)."""
    finetune_crop: int = Field(128, ge=8)
    """Crop side of the L_t fine-tuning (the paper uses 320; 128 keeps CPU steps short)."""
    batch_size: int = Field(8, ge=1)
    lr: float = Field(2e-3, gt=0)
    """Peak learning rate of AMSNet and the supervised ceiling (AP-BSN: half of it)."""
    finetune_lr: float = Field(2e-4, gt=0)
    """Peak learning rate of the L_t fine-tuning (the paper: a tenth of the training rate)."""
    finetune_share: float = Field(0.25, gt=0, lt=1)
    """Share of AMSNet-P's budget spent fine-tuning with L_t (the rest trains AMSNet-B)."""
    methods: list[str] = Field(default_factory=lambda: list(METHODS), min_length=1)
    net: str = "nafnet"
    preset: str = "small"
    apbsn_preset: str = "small"
    ordinary_net: str = "dbsnl"
    """Network of the identity-mapping ablation: ``dbsnl`` is DBSNl made ordinary (regular
    convolutions, no masked centre tap, as the supplement); any other registered name is that
    backbone as it is (e.g. ``dncnn``, a plain CNN that reaches the identity quickly)."""
    amsnet: dict[str, Any] = Field(default_factory=dict)
    """Overrides of the AMSNet settings (e.g. ``{"pd_factor_train": 3}``)."""
    apbsn: dict[str, Any] = Field(default_factory=dict)
    """Overrides of the AP-BSN settings."""
    device: str = "auto"

    @field_validator("amsnet")
    @classmethod
    def _known_amsnet_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _checked(value, AMSNetConfig)

    @field_validator("apbsn")
    @classmethod
    def _known_apbsn_keys(cls, value: dict[str, Any]) -> dict[str, Any]:
        return _checked(value, APBSNConfig)

    def noise_kind(self) -> str:
        return "real" if self.dataset in REAL_NOISE else self.dataset

    def fingerprint(self) -> str:
        """Hash of everything that changes results (not the seeds or the method list)."""
        fields = self.model_dump(exclude={"seeds", "methods", "device"})
        return hashlib.sha256(json.dumps(fields, sort_keys=True).encode()).hexdigest()[:16]


def _checked(overrides: dict[str, Any], model: type[BaseModel]) -> dict[str, Any]:
    """``overrides`` if they are valid settings of ``model`` (unknown keys and bad values
    raise with the key named)."""
    unknown = sorted(set(overrides) - set(model.model_fields) - {"name"})
    if unknown:
        raise ValueError(
            f"unknown settings {unknown}; {model.__name__} has {sorted(model.model_fields)}"
        )
    model.model_validate(overrides)
    return overrides


def load_config(values: dict[str, Any]) -> StudyConfig:
    """Validate study settings (typos and bad values are errors naming the key)."""
    return validate(StudyConfig, values, "quality study settings")
