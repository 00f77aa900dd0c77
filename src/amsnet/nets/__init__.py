"""Plug-and-play backbones behind a small registry (see :mod:`amsnet.nets.registry`)."""

from amsnet.nets.registry import (
    create_net,
    list_nets,
    list_presets,
    net_signature,
    register_net,
)

# Importing a backbone module registers it.
from amsnet.nets import dbsn, deamnet, dncnn, nafnet, restormer, unet  # noqa: F401  isort: skip

__all__ = ["create_net", "list_nets", "list_presets", "net_signature", "register_net"]
