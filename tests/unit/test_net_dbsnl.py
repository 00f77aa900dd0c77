"""Checks specific to DBSNl: the blind spot, its centre mask, and the unrestricted variant."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.nets.dbsn import DBSNl
from amsnet.nets.registry import create_net

TINY = {"width": 8, "num_blocks": 2}


def _num_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_unrestricted_variant_has_the_same_count() -> None:
    net = create_net("dbsnl", blind_spot=False)
    assert _num_parameters(net) == 3_656_131
    assert net.blind_spot is False
    assert DBSNl.blind_spot is True


def _centre_gradient(net: torch.nn.Module, size: int = 15) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(1, 3, size, size, requires_grad=True)
    centre = size // 2
    net(x)[0, :, centre, centre].sum().backward()
    assert x.grad is not None
    return x.grad[0, :, centre, centre], x.grad[0]


def test_output_never_sees_its_own_pixel() -> None:
    torch.manual_seed(0)
    net = DBSNl(**TINY)
    own, everything = _centre_gradient(net)
    assert torch.count_nonzero(own) == 0
    assert torch.count_nonzero(everything) > 0


def test_blind_spot_holds_at_the_border() -> None:
    torch.manual_seed(1)
    net = DBSNl(**TINY)
    x = torch.randn(1, 3, 9, 12, requires_grad=True)
    net(x)[0, :, 0, 11].sum().backward()
    assert x.grad is not None
    assert torch.count_nonzero(x.grad[0, :, 0, 11]) == 0


def test_unrestricted_variant_sees_its_own_pixel() -> None:
    torch.manual_seed(0)
    net = DBSNl(**TINY, blind_spot=False)
    own, _ = _centre_gradient(net)
    assert torch.count_nonzero(own) > 0


def test_unrestricted_variant_uses_plain_convolutions() -> None:
    net = DBSNl(**TINY, blind_spot=False)
    dilations = {m.dilation for m in net.modules() if isinstance(m, torch.nn.Conv2d)}
    assert dilations == {(1, 1)}
    assert not net.branch1.body[0].masked


def test_centre_weight_never_contributes() -> None:
    torch.manual_seed(0)
    net = DBSNl(**TINY).eval()
    x = torch.rand(1, 3, 11, 13)
    masked = net.branch2.body[0]
    assert torch.count_nonzero(masked.weight[:, :, 2, 2]) == 0
    with torch.no_grad():
        before = net(x)
        masked.weight[:, :, 2, 2] = 5.0  # as a careless optimizer or checkpoint might leave it
        assert torch.equal(net(x), before)


def test_centre_weight_gets_no_gradient() -> None:
    torch.manual_seed(0)
    net = DBSNl(**TINY)
    net(torch.rand(1, 3, 10, 10)).square().mean().backward()
    for masked in (net.branch1.body[0], net.branch2.body[0]):
        k = masked.kernel_size[0] // 2
        assert masked.weight.grad is not None
        assert torch.count_nonzero(masked.weight.grad[:, :, k, k]) == 0
        assert torch.count_nonzero(masked.weight.grad) > 0


def test_mask_is_not_in_state_dict() -> None:
    assert not any(key.endswith("mask") for key in DBSNl(**TINY).state_dict())


def test_rejects_odd_width() -> None:
    with pytest.raises(ConfigError, match="even"):
        DBSNl(width=7)
