"""The backbone registry: duplicates raise, typos name the accepted keys, None is dropped."""

from __future__ import annotations

import pytest
from torch import nn

from amsnet.errors import ConfigError
from amsnet.nets import create_net, list_nets, list_presets, net_signature, register_net
from amsnet.nets import registry as registry_module


@pytest.fixture
def scratch_registry(monkeypatch):
    monkeypatch.setattr(registry_module, "_NETS", dict(registry_module._NETS))
    monkeypatch.setattr(registry_module, "_PRESETS", dict(registry_module._PRESETS))


class Tiny(nn.Module):
    size_multiple = 1
    blind_spot = False

    def __init__(self, width: int = 4, depth: int = 2, scales: tuple[int, ...] = (1, 2)) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.width, self.depth, self.scales = width, depth, scales


def test_registering_a_name_twice_raises(scratch_registry):
    register_net("tiny-test")(Tiny)
    with pytest.raises(ConfigError, match="already registered"):
        register_net("tiny-test")(Tiny)


def test_unknown_argument_names_the_accepted_ones(scratch_registry):
    register_net("tiny-test", presets={"paper": {}, "small": {"width": 2}})(Tiny)
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['widht'\].*depth.*width"):
        create_net("tiny-test", widht=3)


def test_a_preset_with_an_unknown_argument_is_rejected_at_registration(scratch_registry):
    with pytest.raises(ConfigError, match="preset 'small'"):
        register_net("tiny-test", presets={"paper": {}, "small": {"wdth": 2}})(Tiny)


def test_a_paper_preset_is_required(scratch_registry):
    with pytest.raises(ConfigError, match="paper"):
        register_net("tiny-test", presets={"small": {}})(Tiny)


def test_presets_none_values_and_resolved_config(scratch_registry):
    register_net("tiny-test", presets={"paper": {}, "small": {"width": 2}})(Tiny)
    net = create_net("tiny-test", preset="small", depth=None)
    assert (net.width, net.depth) == (2, 2)
    assert net.net_config == {"name": "tiny-test", "width": 2, "depth": 2, "scales": [1, 2]}
    assert create_net("tiny-test", preset="small", width=7).width == 7
    assert create_net("tiny-test", preset=None).width == 4
    assert list_presets("tiny-test") == {"paper": {}, "small": {"width": 2}}
    assert net_signature("tiny-test") == {"width": 4, "depth": 2, "scales": (1, 2)}


def test_unknown_names_and_presets(scratch_registry):
    register_net("tiny-test")(Tiny)
    with pytest.raises(ConfigError, match="unknown backbone 'nope'.*tiny-test"):
        create_net("nope")
    with pytest.raises(ConfigError, match=r"no preset 'huge'.*\['paper'\]"):
        create_net("tiny-test", preset="huge")


def test_names_are_case_insensitive_and_listed():
    assert "unet" in list_nets()
    assert create_net("UNet", preset="small").net_config["name"] == "unet"
