"""Trained models shipped inside the package: their names, files and checksums.

Each shipped model is a weights file in ``amsnet/zoo/weights/`` (a ``.safetensors`` file with
its configuration and its model card in the header, :mod:`amsnet.checkpoint`), listed in
:data:`SHIPPED` with the sha256 of its bytes, which is checked every time it is opened. Every
one was made by amsnet's own commands from a configuration in ``configs/zoo/``; how, on what
data and with what figures is in the card (``amsnet models --card NAME``) and in
``docs/models.md``.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from amsnet.errors import CheckpointError


@dataclass(frozen=True)
class ShippedModel:
    """One model inside the package.

    Attributes:
        name: what ``--model`` and :func:`amsnet.load` take.
        file: the weights file's name in ``amsnet/zoo/weights/``.
        sha256: checksum of the file's bytes (checked on every load).
        role: ``student`` (one pass), ``teacher`` (AMSNet, with masks) or ``baseline``.
        summary: one line for ``amsnet models``.
        config: the ``configs/zoo/`` file that retrains it.
    """

    name: str
    file: str
    sha256: str
    role: str
    summary: str
    config: str

    @property
    def path(self) -> Path:
        return Path(str(resources.files("amsnet.zoo") / "weights" / self.file))


SHIPPED: dict[str, ShippedModel] = {}
"""The shipped models by name (filled by :func:`_register` below)."""

DEFAULT_MODEL = "student-nafnet"
"""What ``amsnet denoise`` and :func:`amsnet.denoise` use when given no model."""


def _register(model: ShippedModel) -> None:
    SHIPPED[model.name] = model


_register(
    ShippedModel(
        name="student-nafnet",
        file="student-nafnet.safetensors",
        sha256="6688b9a80954f67e7369da8d829293f6967f06d2577f02a27476adcf2da0851f",
        role="student",
        summary="one-pass NAFNet (small) distilled from amsnet-nafnet-p's P-E output at three "
        "scales (full size, 2x and 3x downscaled); the default",
        config="configs/zoo/nafnet-student.yaml",
    )
)
_register(
    ShippedModel(
        name="amsnet-nafnet-p",
        file="amsnet-nafnet-p.safetensors",
        sha256="0cee2aef501291cc6c2913e104fd84e6b3b727da1c3e1e724c505fba29f787ed",
        role="teacher",
        summary="AMSNet-P around NAFNet (small), the student's teacher; variant E adds R3",
        config="configs/zoo/nafnet-teacher-p.yaml",
    )
)

_register(
    ShippedModel(
        name="apbsn-dbsnl",
        file="apbsn-dbsnl.safetensors",
        sha256="f25d588909c8e427aa40859b112c9d2dac60d4643ba48f0af38ac99df5748f5d",
        role="baseline",
        summary="AP-BSN around DBSNl (small), trained on the same pool at the teacher's CPU "
        "budget: a baseline for comparisons, not the default; variant E adds R3",
        config="configs/zoo/dbsnl-apbsn.yaml",
    )
)


def list_models() -> list[ShippedModel]:
    """The shipped models whose files are present, default first."""
    models = [model for model in SHIPPED.values() if model.path.is_file()]
    return sorted(models, key=lambda model: (model.name != DEFAULT_MODEL, model.name))


def model_path(name: str) -> Path:
    """The verified weights file of the shipped model ``name``.

    Raises:
        CheckpointError: no such model (the message lists them), its file is missing from
            this installation, or its bytes do not match the recorded sha256 (a damaged or
            replaced file: reinstall amsnet).
    """
    model = SHIPPED.get(name)
    if model is None:
        known = ", ".join(sorted(SHIPPED)) or "none"
        raise CheckpointError(
            f"no shipped model named {name!r}; shipped models: {known} (amsnet models lists "
            "them; give a .safetensors file with --weights for your own)"
        )
    path = model.path
    if not path.is_file():
        raise CheckpointError(
            f"the shipped model {name} ({path}) is missing from this installation; reinstall amsnet"
        )
    digest = file_sha256(path)
    if digest != model.sha256:
        raise CheckpointError(
            f"the shipped model {name} ({path}) is damaged or was replaced: its sha256 is "
            f"{digest}, not {model.sha256}; reinstall amsnet"
        )
    return path


def resolve_weights(name_or_path: str | os.PathLike[str]) -> Path:
    """A weights file from a shipped model's name or a path (a name wins only when no file of
    that name exists, so a user's ``student-nafnet`` file in the working folder is used)."""
    path = Path(name_or_path)
    if path.exists() or str(name_or_path) not in SHIPPED:
        return path
    return model_path(str(name_or_path))


def weights_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of what a weights file computes with: its model configuration and its
    tensors (names, dtypes, shapes, bytes), not its card or other metadata. Re-packaging a
    model with a new card keeps this value, so the teacher outputs cached by a distillation
    stay valid.
    """
    import json

    import torch
    from safetensors import safe_open

    from amsnet.checkpoint import read_header

    digest = hashlib.sha256(json.dumps(read_header(path)["config"], sort_keys=True).encode())
    with safe_open(str(path), framework="pt", device="cpu") as handle:
        for key in sorted(handle.keys()):
            tensor = handle.get_tensor(key).contiguous()
            digest.update(f"{key}|{tensor.dtype}|{tuple(tensor.shape)}".encode())
            digest.update(tensor.view(-1).view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def file_sha256(path: str | os.PathLike[str]) -> str:
    """Hex sha256 of a file's bytes (read in 1 MiB blocks)."""
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


__all__ = [
    "DEFAULT_MODEL",
    "SHIPPED",
    "ShippedModel",
    "file_sha256",
    "list_models",
    "model_path",
    "resolve_weights",
    "weights_sha256",
]
