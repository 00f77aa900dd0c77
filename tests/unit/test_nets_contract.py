"""Every registered backbone honours the contract of ``amsnet.nets.base``."""

from __future__ import annotations

import pytest
import torch

from amsnet.nets import create_net, list_nets, list_presets
from amsnet.nets.base import Backbone
from tests.nets_tiny import PAPER_PARAMETERS, TINY

NETS = list_nets()


def test_every_net_has_tiny_arguments_and_a_paper_count():
    assert sorted(TINY) == NETS
    assert sorted(PAPER_PARAMETERS) == NETS


@pytest.mark.parametrize("name", NETS)
def test_paper_preset_has_the_papers_parameter_count(name):
    with torch.device("meta"):
        net = create_net(name, preset="paper")
    assert sum(p.numel() for p in net.parameters()) == PAPER_PARAMETERS[name]


@pytest.mark.parametrize("name", NETS)
def test_small_preset_is_a_few_hundred_thousand_parameters(name):
    assert "small" in list_presets(name)
    with torch.device("meta"):
        net = create_net(name, preset="small")
    assert 100_000 <= sum(p.numel() for p in net.parameters()) <= 700_000


@pytest.mark.parametrize("name", NETS)
@pytest.mark.parametrize("shape", [(1, 3, 33, 47), (2, 3, 9, 13), (1, 3, 1, 2)])
def test_any_size_in_same_shape_out_finite(name, shape, device):
    net = create_net(name, preset=None, **TINY[name]).to(device).eval()
    assert isinstance(net, Backbone)
    with torch.no_grad():
        out = net(torch.rand(shape, device=device))
    assert out.shape == shape
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("name", NETS)
def test_gradients_reach_every_trainable_parameter(name, device):
    torch.manual_seed(1)
    net = create_net(name, preset=None, **TINY[name]).to(device).train()
    out = net(torch.rand(2, 3, 17, 19, device=device))
    (out * torch.randn_like(out)).sum().backward()
    missing = [
        key
        for key, p in net.named_parameters()
        if p.requires_grad and (p.grad is None or not torch.isfinite(p.grad).all())
    ]
    assert not missing, f"no gradient for {missing[:5]}"


@pytest.mark.parametrize("name", NETS)
def test_channels_last_gives_the_same_result(name):
    net = create_net(name, preset=None, **TINY[name]).eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        expected = net(x)
        net = net.to(memory_format=torch.channels_last)
        got = net(x.contiguous(memory_format=torch.channels_last))
    assert torch.allclose(got, expected, atol=1e-5)


@pytest.mark.parametrize("name", NETS)
def test_paper_preset_runs_on_a_small_input(name):
    net = create_net(name, preset="paper").eval()
    with torch.no_grad():
        out = net(torch.rand(1, 3, 24, 20))
    assert out.shape == (1, 3, 24, 20) and torch.isfinite(out).all()
