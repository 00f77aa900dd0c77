"""The one place where configuration (names, dicts) turns into objects."""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from typing import Any, TYPE_CHECKING

import torch
from torch import nn

from amsnet.config import ModelConfig, NetConfig, OptimizerConfig, validate
from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN, Distilled, Supervised
from amsnet.methods.base import Method
from amsnet.nets import create_net

if TYPE_CHECKING:  # pragma: no cover
    from amsnet.config import ExperimentConfig
    from amsnet.training.schedule import LearningRateSchedule

log = logging.getLogger(__name__)

METHODS: dict[str, type[Method]] = {
    "amsnet": AMSNet,
    "apbsn": APBSN,
    "supervised": Supervised,
    "distilled": Distilled,
}
"""The method classes by ``method.name`` (each follows :class:`amsnet.methods.base.Method`)."""


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


def build_optimizer(
    parameters: Iterable[nn.Parameter], config: OptimizerConfig, device: torch.device
) -> torch.optim.Optimizer:
    """Adam or AdamW from a ``train.optimizer`` section.

    The fused implementation is used where PyTorch has one for ``device`` (CUDA, and the CPU
    since PyTorch 2.4): besides being faster it can skip a step on the device, which lets the
    trainer drop steps with a non-finite loss without reading the loss back every step.

    Args:
        parameters: the trainable parameters.
        config: name, lr, betas, weight_decay, eps.
        device: where the parameters live.
    """
    cls = torch.optim.AdamW if config.name == "adamw" else torch.optim.Adam
    trainable = [p for p in parameters if p.requires_grad]
    if not trainable:
        raise ConfigError("the model has no trainable parameters")
    options: dict[str, Any] = {
        "lr": config.lr,
        "betas": tuple(config.betas),
        "weight_decay": config.weight_decay,
        "eps": config.eps,
    }
    try:
        return cls(trainable, fused=True, **options)
    except (RuntimeError, TypeError, ValueError) as error:
        log.debug(
            "no fused %s on %s (%s); using the default implementation", cls.__name__, device, error
        )
        return cls(trainable, **options)


def build_schedule(config: ExperimentConfig) -> LearningRateSchedule:
    """The learning-rate schedule of an experiment (:mod:`amsnet.training.schedule`)."""
    from amsnet.training.schedule import LearningRateSchedule

    return LearningRateSchedule(
        config.train.schedule, config.train.optimizer.lr, config.train.steps
    )
