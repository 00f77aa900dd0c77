"""Checks specific to the NAFNet-Baseline backbone (``amsnet.nets.nafnet``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

import amsnet.nets.nafnet  # noqa: F401  (registers "nafnet")
from amsnet.errors import ConfigError
from amsnet.nets.nafnet import NAFNet
from amsnet.nets.registry import create_net

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_keys" / "nafnet.json"

# Official NAFNetBase key -> ours: only the channel attention's Sequential indices are named.
OFFICIAL_RENAMES = [
    (r"\.se\.1\.", ".se.reduce."),
    (r"\.se\.3\.", ".se.expand."),
]

TINY = {"width": 4, "encoder_blocks": (1, 1), "middle_blocks": 1, "decoder_blocks": (1, 1)}


def _count(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def _rename(key: str) -> str:
    for pattern, replacement in OFFICIAL_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


@pytest.fixture(scope="module")
def paper_net() -> torch.nn.Module:
    return create_net("nafnet", preset="paper")


def test_paper_parameter_count(paper_net: torch.nn.Module) -> None:
    assert _count(paper_net) == 29_056_227
    assert paper_net.size_multiple == 16
    assert paper_net.blind_spot is False


def test_small_parameter_count() -> None:
    assert 150_000 <= _count(create_net("nafnet", preset="small")) <= 600_000


def test_official_keys_map_onto_ours(paper_net: torch.nn.Module) -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    ours = {key: list(value.shape) for key, value in paper_net.state_dict().items()}
    renamed = {_rename(key): shape for key, shape in official.items()}
    assert len(renamed) == len(official)
    assert renamed == ours


def test_official_state_dict_loads_strictly(paper_net: torch.nn.Module) -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    state = {_rename(key): torch.full(shape, 0.5) for key, shape in official.items()}
    paper_net.load_state_dict(state, strict=True)


def test_paper_forward_small_input(paper_net: torch.nn.Module) -> None:
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        y = paper_net.eval()(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("shape", [(1, 3, 33, 47), (1, 3, 5, 7), (2, 3, 1, 1)])
def test_forward_any_size(shape: tuple[int, ...]) -> None:
    net = NAFNet(**TINY)
    x = torch.rand(shape)
    y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_small_preset_forward_odd_size() -> None:
    net = create_net("nafnet", preset="small")
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_fresh_net_is_identity() -> None:
    # beta and gamma start at zero, so every block passes its input through; a zero-initialised
    # ending convolution then leaves only the global residual.
    net = NAFNet(**TINY)
    torch.nn.init.zeros_(net.ending.weight)
    torch.nn.init.zeros_(net.ending.bias)
    x = torch.rand(1, 3, 9, 11)
    torch.testing.assert_close(net(x), x)


def test_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = NAFNet(**TINY)
    # Non-zero residual scales, or the gradient of everything before them is exactly zero; a
    # positive bias keeps the attention's few ReLU units alive, so its first convolution too
    # gets a non-zero gradient.
    for name, parameter in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            torch.nn.init.constant_(parameter, 0.5)
        elif name.endswith("se.reduce.bias"):
            torch.nn.init.constant_(parameter, 1.0)
    net(torch.rand(1, 3, 13, 10)).square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert parameter.grad.abs().sum() > 0, name


def test_channels_last_matches_contiguous() -> None:
    net = NAFNet(**TINY)
    for name, parameter in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            torch.nn.init.constant_(parameter, 0.5)
    x = torch.rand(1, 3, 16, 16)
    expected = net(x)
    got = net.to(memory_format=torch.channels_last)(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_size_multiple_follows_levels() -> None:
    assert NAFNet(**TINY).size_multiple == 4


def test_mismatched_levels_raise() -> None:
    with pytest.raises(ConfigError, match="decoder levels"):
        NAFNet(width=4, encoder_blocks=(1, 1), middle_blocks=1, decoder_blocks=(1,))
