"""Checks specific to DeamNet: the frozen official-only layers and the consistency step."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.nets.deamnet import DeamNet
from amsnet.nets.registry import create_net

TINY = {"width": 8, "iterations": 2, "gate_reduction": 4, "official_unused_layers": False}


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


@pytest.fixture(scope="module")
def paper_net() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_net("deamnet", preset="paper")


def test_paper_parameter_count(paper_net: torch.nn.Module) -> None:
    assert _count(paper_net) == 2_228_131
    assert paper_net.size_multiple == 16
    assert paper_net.blind_spot is False


def test_unused_official_layers_are_frozen_and_optional(paper_net: torch.nn.Module) -> None:
    frozen = {name for name, p in paper_net.named_parameters() if not p.requires_grad}
    assert frozen == {
        f"nlo.{layer}.{kind}"
        for layer in ("unused_conv_dila1", "unused_conv_dila2", "unused_conv_dila3", "unused_cat1")
        for kind in ("weight", "bias")
    }
    without = DeamNet(official_unused_layers=False)
    # 3x3, 5x5 and 7x7 convolutions 64 -> 64 and a 1x1 convolution 192 -> 64, with biases.
    assert _count(paper_net) - _count(without) == 64 * 64 * (9 + 25 + 49) + 192 * 64 + 4 * 64
    assert all(p.requires_grad for p in without.parameters())


def test_backward_reaches_every_trainable_parameter() -> None:
    torch.manual_seed(0)
    # With the unused layers present too: being frozen, they must not be asked for gradients.
    net = DeamNet(**{**TINY, "official_unused_layers": True})
    net(torch.rand(1, 3, 17, 19)).square().mean().backward()
    for name, parameter in net.named_parameters():
        if parameter.requires_grad:
            assert parameter.grad is not None, name
            assert parameter.grad.abs().sum() > 0, name
        else:
            assert name.startswith("nlo.unused_"), name
            assert parameter.grad is None, name


def test_consistency_step_is_the_papers_convex_combination() -> None:
    # x_k = (1 - delta) * NLO(x_{k-1}) + delta * y, with the reference's explicit formula.
    torch.manual_seed(0)
    net = DeamNet(**{**TINY, "iterations": 1}).eval()
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        observation = net.to_features(x)
        filtered = net.nlo(observation)
        delta = net.consistency[0](filtered, observation)
        expected = net.to_image((1 - delta) * filtered + delta * observation)
        torch.testing.assert_close(net(x), expected, rtol=1e-5, atol=1e-6)


def test_invalid_arguments_raise() -> None:
    with pytest.raises(ConfigError, match="gate_reduction"):
        DeamNet(width=8, gate_reduction=16)
    with pytest.raises(ConfigError, match="iterations"):
        DeamNet(width=8, gate_reduction=4, iterations=0)
