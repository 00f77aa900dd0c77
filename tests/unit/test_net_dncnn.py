"""Checks specific to DnCNN (the generic ones are in test_nets_contract.py)."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.nets.dncnn import DnCNN
from amsnet.nets.registry import create_net

TINY = {"width": 8, "depth": 4}


def test_kair_batch_norm_settings() -> None:
    norms = [m for m in create_net("dncnn").modules() if isinstance(m, torch.nn.BatchNorm2d)]
    assert len(norms) == 15
    assert all(m.momentum == 0.9 and m.eps == 1e-4 for m in norms)


def test_output_is_input_minus_predicted_noise() -> None:
    torch.manual_seed(0)
    net = DnCNN(**TINY).eval()
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        assert torch.allclose(net(x), x - net.model(x))


def test_single_pixel_in_eval_mode() -> None:
    # Training-mode batch norm needs more than one value per channel; evaluation does not.
    net = DnCNN(**TINY).eval()
    assert net(torch.rand(1, 3, 1, 1)).shape == (1, 3, 1, 1)


def test_rejects_mismatched_channels() -> None:
    with pytest.raises(ConfigError, match="in_channels"):
        DnCNN(in_channels=3, out_channels=1)
