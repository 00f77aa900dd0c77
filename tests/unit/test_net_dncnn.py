"""DnCNN: paper parameter count, KAIR key layout, any-size forward and backward."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from amsnet.nets.dncnn import DnCNN
from amsnet.nets.registry import create_net

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_keys" / "dncnn.json"

# KAIR's keys are ours unchanged.
OFFICIAL_RENAMES: list[tuple[str, str]] = []

TINY = {"width": 8, "depth": 4}


def _rename(key: str) -> str:
    for pattern, replacement in OFFICIAL_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _num_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_parameter_count() -> None:
    net = create_net("dncnn")
    assert _num_parameters(net) == 559_363
    assert net.size_multiple == 1
    assert net.blind_spot is False


def test_small_preset_parameter_count() -> None:
    assert 150_000 <= _num_parameters(create_net("dncnn", preset="small")) <= 600_000


def test_official_keys_map_onto_state_dict() -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    ours = {key: list(value.shape) for key, value in create_net("dncnn").state_dict().items()}
    renamed = {_rename(key): shape for key, shape in official.items()}
    assert list(renamed) == list(ours)
    assert renamed == ours


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


@pytest.mark.parametrize("size", [(33, 47), (5, 7)])
def test_forward_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = DnCNN(**TINY)
    x = torch.rand(1, 3, *size)
    y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_single_pixel_in_eval_mode() -> None:
    # Training-mode batch norm needs more than one value per channel; evaluation does not.
    net = DnCNN(**TINY).eval()
    assert net(torch.rand(1, 3, 1, 1)).shape == (1, 3, 1, 1)


def test_small_preset_forward() -> None:
    torch.manual_seed(0)
    net = create_net("dncnn", preset="small").eval()
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_paper_forward_small_input() -> None:
    torch.manual_seed(0)
    net = create_net("dncnn").eval()
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = DnCNN(**TINY)
    net(torch.rand(2, 3, 12, 10)).square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_rejects_mismatched_channels() -> None:
    with pytest.raises(ValueError, match="in_channels"):
        DnCNN(in_channels=3, out_channels=1)
