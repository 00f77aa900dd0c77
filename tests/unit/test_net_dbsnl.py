"""DBSNl: paper parameter count, AP-BSN key layout, the blind spot, and the unrestricted variant."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch

from amsnet.nets.dbsn import CentreMaskedConv2d, DBSNl
from amsnet.nets.registry import create_net

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_keys" / "dbsnl.json"

# AP-BSN's keys (after stripping the ``bsn.`` wrapper prefix) are ours unchanged ...
OFFICIAL_RENAMES: list[tuple[str, str]] = []
# ... except the persistent centre-mask buffers of the two masked convolutions, which are
# constant (ones with a zero centre) and rebuilt here, so the converter drops them.
OFFICIAL_DROPPED: tuple[str, ...] = (r"^branch[12]\.body\.0\.mask$",)

TINY = {"width": 8, "num_blocks": 2}


def _rename(key: str) -> str | None:
    if any(re.search(pattern, key) for pattern in OFFICIAL_DROPPED):
        return None
    for pattern, replacement in OFFICIAL_RENAMES:
        key = re.sub(pattern, replacement, key)
    return key


def _num_parameters(net: torch.nn.Module) -> int:
    return sum(p.numel() for p in net.parameters())


def test_paper_parameter_count() -> None:
    net = create_net("dbsnl")
    assert _num_parameters(net) == 3_656_131
    assert net.size_multiple == 1
    assert net.blind_spot is True


def test_unrestricted_variant_has_the_same_count() -> None:
    net = create_net("dbsnl", blind_spot=False)
    assert _num_parameters(net) == 3_656_131
    assert net.blind_spot is False
    assert DBSNl.blind_spot is True


def test_small_preset_parameter_count() -> None:
    assert 150_000 <= _num_parameters(create_net("dbsnl", preset="small")) <= 600_000


def test_official_keys_map_onto_state_dict() -> None:
    official = json.loads(OFFICIAL_KEYS.read_text())
    ours = {key: list(value.shape) for key, value in create_net("dbsnl").state_dict().items()}
    renamed = {new: shape for key, shape in official.items() if (new := _rename(key)) is not None}
    assert list(renamed) == list(ours)
    assert renamed == ours
    assert len(official) - len(renamed) == 2


def test_official_state_dict_loads_strictly() -> None:
    # A synthetic official state dict (random weights, reference masks) converts and loads.
    official = json.loads(OFFICIAL_KEYS.read_text())
    generator = torch.Generator().manual_seed(0)
    state = {}
    for key, shape in official.items():
        if key.endswith(".mask"):
            mask = torch.ones(shape)
            mask[:, :, shape[2] // 2, shape[3] // 2] = 0
            state[key] = mask
        else:
            state[key] = torch.randn(shape, generator=generator)
    converted = {new: value for key, value in state.items() if (new := _rename(key)) is not None}
    net = create_net("dbsnl")
    net.load_state_dict(converted, strict=True)
    for branch in (net.branch1, net.branch2):
        masked = branch.body[0]
        assert isinstance(masked, CentreMaskedConv2d)
        reference = state[f"{'branch1' if branch is net.branch1 else 'branch2'}.body.0.mask"]
        assert torch.equal(masked.mask.expand_as(reference), reference)


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


@pytest.mark.parametrize("size", [(33, 47), (5, 7), (1, 1)])
def test_forward_any_size(size: tuple[int, int]) -> None:
    torch.manual_seed(0)
    net = DBSNl(**TINY)
    x = torch.rand(1, 3, *size)
    y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_small_preset_forward() -> None:
    torch.manual_seed(0)
    net = create_net("dbsnl", preset="small").eval()
    x = torch.rand(1, 3, 33, 47)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_paper_forward_small_input() -> None:
    torch.manual_seed(0)
    net = create_net("dbsnl").eval()
    x = torch.rand(1, 3, 40, 40)
    with torch.no_grad():
        y = net(x)
    assert y.shape == x.shape
    assert torch.isfinite(y).all()


def test_backward_reaches_every_parameter() -> None:
    torch.manual_seed(0)
    net = DBSNl(**TINY)
    net(torch.rand(2, 3, 12, 10)).square().mean().backward()
    for name, parameter in net.named_parameters():
        assert parameter.grad is not None, name
        assert torch.isfinite(parameter.grad).all(), name


def test_rejects_odd_width() -> None:
    with pytest.raises(ValueError, match="even"):
        DBSNl(width=7)
