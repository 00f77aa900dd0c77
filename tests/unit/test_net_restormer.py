"""Checks specific to the Restormer backbone (``amsnet.nets.restormer``)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

import amsnet.nets.restormer  # noqa: F401  (registers "restormer")
from amsnet.compat.official import RENAMES
from amsnet.errors import ConfigError
from amsnet.nets.layers import ChannelLayerNorm
from amsnet.nets.restormer import GatedFeedForward, Restormer, TransposedAttention
from amsnet.ops.padding import pad_to_multiple

OFFICIAL_KEYS = Path(__file__).parents[1] / "data" / "official_keys" / "restormer.json"

TINY = {"width": 8, "num_blocks": (1, 1, 1, 1), "num_refinement_blocks": 1, "heads": (1, 2, 2, 4)}


def _rename(key: str) -> str:
    for pattern, replacement in RENAMES["restormer"]:
        key = re.sub(pattern, replacement, key)
    return key


def test_with_bias_norm_keys_map_too() -> None:
    # The official "WithBias" norm adds ``normN.body.bias`` right after each norm weight.
    official: dict[str, list[int]] = {}
    for key, shape in json.loads(OFFICIAL_KEYS.read_text()).items():
        official[key] = shape
        if key.endswith(".body.weight"):
            official[key.replace(".weight", ".bias")] = shape
    ours = Restormer(norm_bias=True).state_dict()
    renamed = {_rename(key): shape for key, shape in official.items()}
    assert renamed == {key: list(value.shape) for key, value in ours.items()}


def _reference_attention(module: TransposedAttention, x: torch.Tensor) -> torch.Tensor:
    # The paper's formula, spelled out: normalise q and k per channel over all pixels.
    b, c, h, w = x.shape
    q, k, v = module.qkv_dwconv(module.qkv(x)).chunk(3, dim=1)
    q, k, v = (t.reshape(b, module.heads, c // module.heads, h * w) for t in (q, k, v))
    q, k = F.normalize(q, dim=-1), F.normalize(k, dim=-1)
    attention = (q @ k.transpose(-2, -1) * module.temperature).softmax(dim=-1)
    return module.project_out((attention @ v).reshape(b, c, h, w))


@pytest.mark.parametrize("heads", [1, 4])
def test_attention_matches_normalised_formula(heads: int) -> None:
    torch.manual_seed(0)
    module = TransposedAttention(16, heads, bias=True)
    with torch.no_grad():
        module.temperature.uniform_(0.5, 2.0)
    x = torch.randn(2, 16, 9, 11)
    expected = _reference_attention(module, x)
    torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-5)
    channels_last = module(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(channels_last, expected, rtol=1e-5, atol=1e-5)


def test_feed_forward_matches_the_chunked_formula() -> None:
    # The block computes each half of its expansion on its own; the paper's formula chunks
    # one expansion. Both must agree, with and without biases, in both memory formats.
    torch.manual_seed(0)
    for bias in (False, True):
        module = GatedFeedForward(12, 2.66, bias=bias)
        x = torch.randn(2, 12, 7, 9)
        gate, content = module.dwconv(module.project_in(x)).chunk(2, dim=1)
        expected = module.project_out(F.gelu(gate) * content)
        for layout in (torch.contiguous_format, torch.channels_last):
            with torch.no_grad():  # the in-place inference path
                got = module(x.contiguous(memory_format=layout))
            torch.testing.assert_close(got, expected.detach(), rtol=1e-5, atol=1e-6)
        torch.testing.assert_close(module(x), expected, rtol=1e-5, atol=1e-6)


def test_bias_free_norm_inference_path_matches_the_formula() -> None:
    torch.manual_seed(0)
    norm = ChannelLayerNorm(10, bias=False, eps=1e-5)
    with torch.no_grad():
        norm.weight.uniform_(0.5, 2.0)
    x = torch.randn(2, 10, 5, 6) * 3 + 1  # a non-zero mean: the norm must not subtract it
    expected = x / torch.sqrt(x.var(dim=1, keepdim=True, unbiased=False) + 1e-5)
    expected = expected * norm.weight.view(1, -1, 1, 1)
    channels_last = x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        fast = norm(channels_last)
    assert fast.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(fast, expected, rtol=1e-5, atol=1e-5)
    torch.testing.assert_close(norm(channels_last), expected, rtol=1e-5, atol=1e-5)


def test_inference_and_training_paths_agree() -> None:
    # no_grad takes in-place and fused shortcuts; with autograd on, the plain formulas.
    torch.manual_seed(0)
    net = Restormer(**TINY).to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, 16, 16).contiguous(memory_format=torch.channels_last)
    with_grad = net(x)
    with torch.no_grad():
        without = net(x)
    torch.testing.assert_close(without, with_grad.detach(), rtol=1e-5, atol=1e-5)
    with_grad.square().mean().backward()
    assert all(p.grad is not None for p in net.parameters())


def test_pads_by_reflection_and_crops_back() -> None:
    torch.manual_seed(0)
    net = Restormer(**TINY).eval()
    x = torch.rand(1, 3, 13, 21)
    padded, _ = pad_to_multiple(x, 8, mode="reflect")
    assert padded.shape[-2:] == (16, 24)
    with torch.no_grad():
        torch.testing.assert_close(net(x), net(padded)[..., :13, :21])


def test_global_residual() -> None:
    # With a zero output conv the network is the identity.
    net = Restormer(**TINY).eval()
    with torch.no_grad():
        net.output.weight.zero_()
        x = torch.rand(1, 3, 10, 12)
        assert torch.equal(net(x), x)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"out_channels": 1},
        {"width": 7},
        {"heads": (1, 3, 2, 4)},
        {"num_blocks": (1, 1, 1)},
    ],
)
def test_rejects_inconsistent_configuration(kwargs: dict[str, object]) -> None:
    with pytest.raises(ConfigError):
        Restormer(**{**TINY, **kwargs})
