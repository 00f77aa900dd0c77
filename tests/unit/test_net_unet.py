"""Checks specific to the UNet (the generic ones are in test_nets_contract.py)."""

from __future__ import annotations

import pytest
import torch

from amsnet.nets.unet import UNet
from amsnet.ops.padding import pad_to_multiple

TINY = {"width": 4, "output_width": 6}


def test_reference_initialisation() -> None:
    # Kaiming-normal (fan-in) times 0.1 and zero biases, for the last layer too.
    torch.manual_seed(0)
    net = UNet(width=16, output_width=16)
    assert all(not m.bias.any() for m in net.modules() if hasattr(m, "bias") and m.bias is not None)
    expected_std = 0.1 * (2.0 / (16 * 9)) ** 0.5
    assert net.enc_conv2.weight.std().item() == pytest.approx(expected_std, rel=0.1)


def test_pads_by_reflection_and_crops_back() -> None:
    torch.manual_seed(0)
    net = UNet(**TINY).eval()
    x = torch.rand(1, 3, 33, 47)
    padded, _ = pad_to_multiple(x, 32, mode="reflect")
    assert padded.shape[-2:] == (64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), net(padded)[..., :33, :47])
