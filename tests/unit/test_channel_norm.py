"""The C layer norm of amsnet.native and its fallbacks (amsnet.ops.channel_norm)."""

import os
import stat

import pytest
import torch
import torch.nn.functional as F

from amsnet import native
from amsnet.nets import create_net
from amsnet.ops.channel_norm import (
    bias_free_norm_bf16,
    channel_layer_norm,
    native_bf16_norm_applies,
    native_norm_applies,
)

CHANNELS_LAST = torch.channels_last


@pytest.fixture
def fresh_native(monkeypatch, tmp_path):
    """amsnet.native looking again, with its own cache folder; restored afterwards."""
    monkeypatch.setenv(native.CACHE_VARIABLE, str(tmp_path / "cache"))
    native.reset()
    yield tmp_path
    native.reset()


def _built() -> native.NativeStatus:
    state = native.status()
    if not state.available:
        pytest.skip(f"amsnet's C kernels are not available here: {state.reason}")
    return state


def _reference(x, weight, bias, eps):
    return F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), weight, bias, eps).permute(0, 3, 1, 2)


def _case(channels, batch=2, height=13, width=7, seed=0):
    generator = torch.Generator().manual_seed(seed)
    x = (torch.randn(batch, channels, height, width, generator=generator) * 3 + 1).contiguous(
        memory_format=CHANNELS_LAST
    )
    weight = torch.rand(channels, generator=generator) + 0.5
    bias = torch.randn(channels, generator=generator)
    return x, weight, bias


@pytest.mark.parametrize("channels", native.NORM_CHANNELS)
@pytest.mark.parametrize("shape", [(2, 13, 7), (1, 4, 4), (3, 1, 5)])
def test_the_c_kernel_is_the_layer_norm(channels, shape):
    _built()
    batch, height, width = shape
    x, weight, bias = _case(channels, batch, height, width)
    with torch.no_grad():
        assert native_norm_applies(x, weight, bias)
        out = channel_layer_norm(x, weight, bias, 1e-6)
    assert out.is_contiguous(memory_format=CHANNELS_LAST)
    torch.testing.assert_close(out, _reference(x, weight, bias, 1e-6), atol=1e-5, rtol=1e-5)


def test_the_c_kernel_reads_a_view_at_its_offset():
    # A batch slice of a channels-last tensor is channels-last with a storage offset.
    _built()
    x, weight, bias = _case(8, batch=3)
    view = x[1:]
    with torch.no_grad():
        assert native_norm_applies(view, weight, bias)
        torch.testing.assert_close(
            channel_layer_norm(view, weight, bias, 1e-6), _reference(view, weight, bias, 1e-6)
        )


def test_other_layouts_dtypes_and_widths_use_pytorch():
    x, weight, bias = _case(8)
    with torch.no_grad():
        assert not native_norm_applies(x.contiguous(), weight, bias)  # default layout
        assert not native_norm_applies(x.double(), weight.double(), bias.double())
        wide, w64, b64 = _case(64)
        assert not native_norm_applies(wide, w64, b64)  # PyTorch's kernel is faster there
        torch.testing.assert_close(
            channel_layer_norm(wide, w64, b64, 1e-6), _reference(wide, w64, b64, 1e-6)
        )
    x.requires_grad_(True)
    out = channel_layer_norm(x, weight, bias, 1e-6)
    out.square().sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("channels", native.NORM_CHANNELS)
def test_training_gradients_are_pytorchs(channels):
    _built()
    x, weight, bias = _case(channels, batch=2, height=9, width=11)
    generator = torch.Generator().manual_seed(channels)
    # The gradient arrives in the default layout: the backward must not assume channels-last.
    upstream = torch.randn(x.shape, generator=generator)
    outputs, grads = [], []
    for function in (channel_layer_norm, _reference):
        leaves = [t.clone().requires_grad_(True) for t in (x, weight, bias)]
        out = function(*leaves, 1e-6)
        out.backward(upstream)
        outputs.append(out)
        grads.append([leaf.grad for leaf in leaves])
    assert type(outputs[0].grad_fn).__name__.startswith("_NativeLayerNorm")
    torch.testing.assert_close(outputs[0], outputs[1], atol=1e-5, rtol=1e-5)
    for fast, reference, name in zip(*grads, ("x", "weight", "bias"), strict=True):
        torch.testing.assert_close(fast, reference, atol=1e-4, rtol=1e-4, msg=name)


def test_a_training_step_of_the_small_nafnet_is_the_same_with_and_without_the_kernel(
    monkeypatch,
):
    _built()
    torch.manual_seed(0)
    net = create_net("nafnet", preset="small").train().to(memory_format=CHANNELS_LAST)
    for block in net.modules():
        if hasattr(block, "beta"):
            torch.nn.init.normal_(block.beta, std=0.3)
            torch.nn.init.normal_(block.gamma, std=0.3)
    x = torch.rand(2, 3, 32, 32).contiguous(memory_format=CHANNELS_LAST)

    def gradients():
        net.zero_grad()
        (net(x) - x).abs().mean().backward()
        return {name: p.grad.clone() for name, p in net.named_parameters()}

    fast = gradients()
    monkeypatch.setattr(native, "library", lambda: None)
    plain = gradients()
    for name, grad in plain.items():
        torch.testing.assert_close(fast[name], grad, atol=1e-5, rtol=1e-3, msg=name)


def test_the_small_nafnet_gives_the_same_output_with_and_without_the_kernel(monkeypatch):
    _built()
    net = create_net("nafnet", preset="small").eval().to(memory_format=CHANNELS_LAST)
    for block in net.modules():  # the fresh scales are 0: make every block do something
        if hasattr(block, "beta"):
            torch.nn.init.normal_(block.beta, std=0.3)
            torch.nn.init.normal_(block.gamma, std=0.3)
    x = torch.rand(1, 3, 48, 40).contiguous(memory_format=CHANNELS_LAST)
    with torch.no_grad():
        fast = net(x)
        monkeypatch.setattr(native, "library", lambda: None)
        plain = net(x)
    torch.testing.assert_close(fast, plain, atol=1e-5, rtol=1e-5)


def test_disabled_by_the_environment(fresh_native, monkeypatch):
    monkeypatch.setenv(native.DISABLE_VARIABLE, "0")
    assert native.library() is None
    state = native.status()
    assert not state.available and native.DISABLE_VARIABLE in state.reason
    x, weight, bias = _case(8)
    with torch.no_grad():
        torch.testing.assert_close(
            channel_layer_norm(x, weight, bias, 1e-6), _reference(x, weight, bias, 1e-6)
        )
    assert not (fresh_native / "cache").exists()  # nothing was built


def _script(folder, name, body):
    path = folder / name
    path.write_text("#!/bin/sh\n" + body)
    path.chmod(path.stat().st_mode | stat.S_IEXEC)
    return path


def test_a_failing_compiler_falls_back_and_says_why(fresh_native, monkeypatch):
    # A compiler that answers --version but fails to compile.
    compiler = _script(
        fresh_native,
        "brokencc",
        'if [ "$1" = "--version" ]; then echo "brokencc 1.0"; exit 0; fi\n'
        'echo "brokencc: error: no licence" >&2; exit 1\n',
    )
    monkeypatch.setenv("CC", str(compiler))
    assert native.library() is None
    reason = native.status().reason
    assert "compiling channel_norm.c failed" in reason and "no licence" in reason
    leftovers = list((fresh_native / "cache" / "native").glob("*"))
    assert leftovers == []  # no partial library under any name


def test_no_compiler_falls_back(fresh_native, monkeypatch):
    monkeypatch.setenv("CC", str(fresh_native / "no-such-cc"))
    assert native.library() is None
    assert "no C compiler" in native.status().reason


@pytest.mark.parametrize(
    "right, wrong_text",
    [
        ("+ bias[c];", "- bias[c];"),  # the forward
        ("total_b[c] += local_b[c];", "total_b[c] -= local_b[c];"),  # the bias gradient
        ("- n[c] * sum_gwn)", "+ n[c] * sum_gwn)"),  # the input gradient
    ],
)
def test_a_library_that_computes_wrongly_is_not_used(fresh_native, monkeypatch, right, wrong_text):
    if native._compiler() is None:
        pytest.skip("no C compiler here")
    wrong = fresh_native / "channel_norm.c"
    source = native._SOURCE.read_text()
    assert right in source
    wrong.write_text(source.replace(right, wrong_text))
    monkeypatch.setattr(native, "_SOURCE", wrong)
    assert native.library() is None
    assert "failed its check" in native.status().reason


def test_built_once_then_loaded_from_the_cache(fresh_native):
    first = _built()
    assert first.reason.startswith("built") and first.path.parent == (
        fresh_native / "cache" / "native"
    )
    native.reset()
    second = native.status()
    assert second.available and second.reason.startswith("loaded") and second.path == first.path
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]
    assert os.access(first.path, os.R_OK)


@pytest.mark.parametrize("channels", [*native.NORM_CHANNELS, 3, 40, 512])
def test_the_bfloat16_kernel_is_the_layer_norm_rounded_to_bfloat16(channels):
    _built()
    x, weight, bias = _case(channels, batch=2, height=9, width=5)
    x = x.bfloat16()
    with torch.no_grad():
        assert native_bf16_norm_applies(x, weight, bias)
        out = channel_layer_norm(x, weight, bias, 1e-6)
        # Under autocast (where the network calls it) it is the same kernel, not autocast's
        # float32 layer norm.
        with torch.autocast("cpu", dtype=torch.bfloat16):
            assert torch.equal(channel_layer_norm(x, weight, bias, 1e-6), out)
    assert out.dtype == torch.bfloat16 and out.is_contiguous(memory_format=CHANNELS_LAST)
    expected = _reference(x.float(), weight, bias, 1e-6)
    # Rounding to 8 significant bits: at most one bfloat16 step, and nearly always exact.
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=2**-7)
    assert (out == expected.bfloat16()).float().mean() > 0.98


def test_the_bfloat16_kernel_leaves_training_and_odd_weights_to_pytorch():
    x, weight, bias = _case(8)
    x = x.bfloat16()
    leaf = x.clone().requires_grad_(True)
    assert not native_bf16_norm_applies(leaf, weight, bias)  # a gradient is asked
    with torch.no_grad():
        assert native_bf16_norm_applies(leaf, weight, bias)
    assert not native_bf16_norm_applies(x, weight[:4], bias[:4])  # one value per channel
    assert not native_bf16_norm_applies(x, weight.bfloat16(), bias.bfloat16())
    assert not native_bf16_norm_applies(x.contiguous(), weight, bias)
    out = channel_layer_norm(leaf, weight, bias, 1e-6)
    out.float().square().sum().backward()
    assert leaf.grad is not None and torch.isfinite(leaf.grad.float()).all()


@pytest.mark.parametrize("channels", [8, 3, 48, 384])
def test_the_bfloat16_bias_free_norm_is_restormers_rounded_to_bfloat16(channels):
    _built()
    x, weight, _ = _case(channels, batch=2, height=9, width=5, seed=channels)
    x = x.bfloat16()
    with torch.no_grad():
        out = bias_free_norm_bf16(x, weight, 1e-5)
    assert out is not None and out.dtype == torch.bfloat16
    assert out.is_contiguous(memory_format=CHANNELS_LAST)
    # Restormer's BiasFree norm: divided by the (centred) standard deviation, mean kept.
    wide = x.float()
    variance = wide.var(dim=1, keepdim=True, unbiased=False)
    expected = wide / torch.sqrt(variance + 1e-5) * weight.view(1, -1, 1, 1)
    torch.testing.assert_close(out.float(), expected, atol=1e-2, rtol=2**-7)
    assert (out == expected.bfloat16()).float().mean() > 0.98
    # Not for float32, nor when a gradient is asked: the caller's own path runs.
    assert bias_free_norm_bf16(x.float(), weight, 1e-5) is None
    assert bias_free_norm_bf16(x.clone().requires_grad_(True), weight, 1e-5) is None
