"""Checks specific to DeamNet: parameter counts, official key layout, any size, gradients."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.nets.deamnet import DeamNet
from amsnet.nets.registry import create_net

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_keys" / "deamnet.json"

# Applied in order, each with re.sub, to every key of the official ``Deam`` state dict.
OFFICIAL_RENAMES = [
    # Wrapper levels that each hold a single convolution.
    (r"\.block\.0\.", "."),
    (r"\.conv2d\.", "."),
    (r"^transform_function\.ext\.", "to_features.project."),
    (r"^transform_function\.pre\.", "to_features.refine."),
    (r"^inverse_transform_function\.ext\.", "to_image.project."),
    (r"^inverse_transform_function\.pre\.", "to_image.refine."),
    (r"^line11\.", "consistency.0."),
    (r"^line22\.", "consistency.1."),
    (r"^line33\.", "consistency.2."),
    (r"^line44\.", "consistency.3."),
    (r"^(consistency\.\d+)\.C\.", r"\1.observation_conv."),
    (r"^(consistency\.\d+)\.cat\.", r"\1.fuse."),
    (r"^(consistency\.\d+)\.weight\.conv_du\.", r"\1.gate."),
    (r"^net2\.conv_dila(\d)\.", r"nlo.unused_conv_dila\1."),
    (r"^net2\.cat1\.", "nlo.unused_cat1."),
    (r"^net2\.e(\d)\.body\.2\.", r"nlo.encoders.\1.down."),
    (r"^net2\.e(\d)\.body\.", r"nlo.encoders.\1.convs."),
    (r"^net2\.attention(\d)\.conv_du\.", r"nlo.skip_gates.\1.gate."),
    (r"^net2\.attention(\d)\.cat\.", r"nlo.skip_gates.\1.fuse."),
    (r"^net2\.attention(\d)\.C\.", r"nlo.skip_gates.\1.skip_conv."),
    (r"^net2\.attention(\d)\.ConvTranspose\.", r"nlo.skip_gates.\1.upsample_conv."),
    (r"^net2\.mid\.", "nlo.middle."),
    (r"^net2\.de(\d)\.upsample\.conv1\.", r"nlo.decoders.\1.skip_conv."),
    (r"^net2\.de(\d)\.upsample\.ConvTranspose\.", r"nlo.decoders.\1.upsample_conv."),
    (r"^net2\.de(\d)\.upsample\.cat\.", r"nlo.decoders.\1.fuse."),
    (r"^net2\.de(\d)\.body\.", r"nlo.decoders.\1.convs."),
    (r"^net2\.final\.", "nlo.final."),
]

TINY = {"width": 8, "iterations": 2, "gate_reduction": 4, "official_unused_layers": False}


def _rename(key: str) -> str:
    for pattern, replacement in OFFICIAL_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


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


def test_small_parameter_count() -> None:
    assert 150_000 <= _count(create_net("deamnet", preset="small")) <= 600_000


def test_official_keys_map_onto_ours(paper_net: torch.nn.Module) -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    ours = {key: list(value.shape) for key, value in paper_net.state_dict().items()}
    renamed = {_rename(key): shape for key, shape in official.items()}
    assert len(renamed) == len(official)
    assert renamed == ours
    assert sum(torch.Size(shape).numel() for shape in official.values()) == 2_228_131


def test_official_state_dict_loads_strictly(paper_net: torch.nn.Module) -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    state = {_rename(key): torch.full(shape, 0.01) for key, shape in official.items()}
    paper_net.load_state_dict(state, strict=True)


def test_paper_forward_small_input() -> None:
    torch.manual_seed(0)
    net = create_net("deamnet", preset="paper").eval()
    x = torch.rand(1, 3, 20, 24)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


@pytest.mark.parametrize("shape", [(1, 3, 33, 47), (1, 3, 5, 7), (2, 1, 1, 1), (1, 3, 16, 32)])
def test_forward_any_size(shape: tuple[int, ...]) -> None:
    torch.manual_seed(0)
    net = DeamNet(in_channels=shape[1], **TINY)
    x = torch.rand(shape)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_small_preset_forward_odd_size() -> None:
    torch.manual_seed(0)
    net = create_net("deamnet", preset="small").eval()
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


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


def test_channels_last_matches_contiguous() -> None:
    torch.manual_seed(0)
    net = DeamNet(**TINY).eval()
    x = torch.rand(1, 3, 32, 16)
    with torch.no_grad():
        expected = net(x)
        net = net.to(memory_format=torch.channels_last)
        got = net(x.to(memory_format=torch.channels_last))
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


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
