"""Checks specific to the NAFNet-Baseline backbone (``amsnet.nets.nafnet``)."""

from __future__ import annotations

import pytest
import torch

import amsnet.nets.nafnet  # noqa: F401  (registers "nafnet")
from amsnet.errors import ConfigError
from amsnet.nets.nafnet import NAFNet

TINY = {"width": 4, "encoder_blocks": (1, 1), "middle_blocks": 1, "decoder_blocks": (1, 1)}


def test_fresh_net_is_identity() -> None:
    # beta and gamma start at zero, so every block passes its input through; a zero-initialised
    # ending convolution then leaves only the global residual.
    net = NAFNet(**TINY)
    torch.nn.init.zeros_(net.ending.weight)
    torch.nn.init.zeros_(net.ending.bias)
    x = torch.rand(1, 3, 9, 11)
    torch.testing.assert_close(net(x), x)


def test_size_multiple_follows_levels() -> None:
    assert NAFNet(**TINY).size_multiple == 4


def test_mismatched_levels_raise() -> None:
    with pytest.raises(ConfigError, match="decoder levels"):
        NAFNet(width=4, encoder_blocks=(1, 1), middle_blocks=1, decoder_blocks=(1,))
