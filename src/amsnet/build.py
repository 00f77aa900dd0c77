"""The one place where configuration (names, dicts) turns into objects."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from amsnet.config import ModelConfig, NetConfig, validate
from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net

METHODS: dict[str, type[nn.Module]] = {"amsnet": AMSNet, "apbsn": APBSN}

Method = AMSNet | APBSN


def build_net(config: NetConfig | Mapping[str, Any]) -> nn.Module:
    """Build a backbone from ``{"name": ..., "preset": ..., **kwargs}``."""
    net = config if isinstance(config, NetConfig) else validate(NetConfig, config, "net")
    return create_net(net.name, preset=net.preset, **net.kwargs())


def build_method(
    config: ModelConfig | Mapping[str, Any], backbone: nn.Module | None = None
) -> Method:
    """Build a method (and its backbone unless one is given) from a model configuration.

    Args:
        config: ``{"method": {"name": "amsnet", ...}, "net": {"name": "unet", ...}}``.
        backbone: an already built backbone to wrap instead of ``config["net"]``.
    """
    model = config if isinstance(config, ModelConfig) else validate(ModelConfig, config, "model")
    settings = model.method.model_dump()
    cls = METHODS[settings.pop("name")]
    return cls(backbone if backbone is not None else build_net(model.net), **settings)


def model_config(method: nn.Module) -> dict[str, Any]:
    """The model configuration that rebuilds ``method`` (what weights files store).

    Raises:
        ConfigError: the backbone was not made by :func:`amsnet.nets.create_net`, so its
            constructor arguments are unknown.
    """
    net_config = getattr(method.backbone, "net_config", None)
    if net_config is None:
        raise ConfigError(
            f"the backbone {type(method.backbone).__name__} was not built with "
            "amsnet.create_net, so its configuration cannot be saved; build it with "
            "create_net(name, **kwargs) (or register it with amsnet.nets.register_net)"
        )
    return {"method": method.method_config(), "net": dict(net_config)}
