"""UNet: paper parameter count, reference key layout, padding to 32, forward and backward."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from amsnet.nets.registry import create_net
from amsnet.nets.unet import UNet
from amsnet.ops.padding import pad_to_multiple

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_keys" / "unet.json"

# The reference UNet's keys are ours unchanged.
OFFICIAL_RENAMES: list[tuple[str, str]] = []

TINY = {"width": 4, "output_width": 6}


def _rename(key: str) -> str:
    for pattern, replacement in OFFICIAL_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _num_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_parameter_count() -> None:
    net = create_net("unet")
    assert _num_parameters(net) == 7_935_555
    assert net.size_multiple == 32
    assert net.blind_spot is False


def test_small_preset_parameter_count() -> None:
    assert 150_000 <= _num_parameters(create_net("unet", preset="small")) <= 600_000


def test_official_keys_map_onto_state_dict() -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    ours = {key: list(value.shape) for key, value in create_net("unet").state_dict().items()}
    renamed = {_rename(key): shape for key, shape in official.items()}
    assert list(renamed) == list(ours)
    assert renamed == ours


def test_reference_initialisation() -> None:
    # Kaiming-normal (fan-in) times 0.1 and zero biases, for the last layer too.
    torch.manual_seed(0)
    net = UNet(width=16, output_width=16)
    assert all(not m.bias.any() for m in net.modules() if hasattr(m, "bias") and m.bias is not None)
    expected_std = 0.1 * (2.0 / (16 * 9)) ** 0.5
    assert net.enc_conv2.weight.std().item() == pytest.approx(expected_std, rel=0.1)


@pytest.mark.parametrize("size", [(33, 47), (5, 7), (1, 1), (32, 64)])
def test_forward_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = UNet(**TINY)
    x = torch.rand(1, 3, *size)
    y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_small_preset_forward() -> None:
    torch.manual_seed(0)
    net = create_net("unet", preset="small").eval()
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_paper_forward_small_input() -> None:
    torch.manual_seed(0)
    net = create_net("unet").eval()
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_pads_by_reflection_and_crops_back() -> None:
    torch.manual_seed(0)
    net = UNet(**TINY).eval()
    x = torch.rand(1, 3, 33, 47)
    padded, _ = pad_to_multiple(x, 32, mode="reflect")
    assert padded.shape[-2:] == (64, 64)
    with torch.no_grad():
        assert torch.equal(net(x), net(padded)[..., :33, :47])


def test_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = UNet(**TINY)
    net(torch.rand(2, 3, 33, 20)).square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name
