"""amsnet: self-supervised real-image denoising with the asymmetric mask scheme.

The public API is imported lazily, so ``import amsnet`` (and the command line's ``--help``)
stays fast and does not load torch until a name that needs it is used.

Example:
    >>> import torch, amsnet
    >>> method = amsnet.AMSNet(amsnet.create_net("unet", preset="small"))
    >>> method.denoise(torch.rand(1, 3, 64, 48)).shape
    torch.Size([1, 3, 64, 48])
"""

from __future__ import annotations

import importlib
from typing import Any, TYPE_CHECKING

from amsnet.version import __version__

_EXPORTS = {
    "Supervised": "amsnet.methods",
    "Trainer": "amsnet.training",
    "load_config": "amsnet.config",
    "denoise": "amsnet.api",
    "adapt": "amsnet.api",
    "distill": "amsnet.api",
    "fit": "amsnet.api",
    "Distilled": "amsnet.methods",
    "list_models": "amsnet.zoo",
    "load": "amsnet.api",
    "export_onnx": "amsnet.onnx_export",
    "OnnxModel": "amsnet.onnx_runtime",
    "AMSNet": "amsnet.methods",
    "APBSN": "amsnet.methods",
    "LossOutput": "amsnet.methods",
    "Batch": "amsnet.methods",
    "Method": "amsnet.methods",
    "create_net": "amsnet.nets",
    "list_nets": "amsnet.nets",
    "list_presets": "amsnet.nets",
    "build_method": "amsnet.build",
    "save_pretrained": "amsnet.checkpoint",
    "load_pretrained": "amsnet.checkpoint",
    "convert_official": "amsnet.compat.official",
    "AmsnetError": "amsnet.errors",
    "ConfigError": "amsnet.errors",
    "CheckpointError": "amsnet.errors",
    "ShapeError": "amsnet.errors",
}

__all__ = [
    "APBSN",
    "AMSNet",
    "AmsnetError",
    "Batch",
    "CheckpointError",
    "ConfigError",
    "Distilled",
    "LossOutput",
    "Method",
    "OnnxModel",
    "ShapeError",
    "Supervised",
    "Trainer",
    "__version__",
    "adapt",
    "build_method",
    "convert_official",
    "create_net",
    "denoise",
    "distill",
    "export_onnx",
    "fit",
    "list_models",
    "list_nets",
    "list_presets",
    "load",
    "load_config",
    "load_pretrained",
    "save_pretrained",
]

if TYPE_CHECKING:  # pragma: no cover
    from amsnet.api import adapt, denoise, distill, fit, load
    from amsnet.build import build_method
    from amsnet.checkpoint import load_pretrained, save_pretrained
    from amsnet.compat.official import convert_official
    from amsnet.config import load_config
    from amsnet.errors import AmsnetError, CheckpointError, ConfigError, ShapeError
    from amsnet.methods import AMSNet, APBSN, Batch, Distilled, LossOutput, Method, Supervised
    from amsnet.nets import create_net, list_nets, list_presets
    from amsnet.onnx_export import export_onnx
    from amsnet.onnx_runtime import OnnxModel
    from amsnet.training import Trainer
    from amsnet.zoo import list_models


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        value = getattr(importlib.import_module(_EXPORTS[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'amsnet' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_EXPORTS))
