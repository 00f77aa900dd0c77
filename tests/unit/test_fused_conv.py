import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amsnet.nets import create_net
from amsnet.ops import fused_conv
from amsnet.ops.fused_conv import conv_gelu, conv_pixel_shuffle, conv_scaled_residual, fusable

CHANNELS_LAST = torch.channels_last


def _conv(c_in, c_out, kernel, groups=1):
    torch.manual_seed(c_in * 10 + kernel)
    return nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, groups=groups)


def _input(channels):
    torch.manual_seed(1)
    return torch.randn(2, channels, 20, 24).contiguous(memory_format=CHANNELS_LAST)


needs_onednn = pytest.mark.skipif(
    not (torch.backends.mkldnn.is_available() and fused_conv._HAS_FUSED_KERNELS),
    reason="this PyTorch build has no oneDNN fused convolutions",
)


@needs_onednn
@pytest.mark.parametrize("kernel, groups", [(3, 6), (1, 1)])
def test_conv_gelu_is_gelu_of_the_convolution(kernel, groups):
    conv, x = _conv(6, 6, kernel, groups), _input(6)
    with torch.no_grad():
        assert fusable(x, conv)
        torch.testing.assert_close(conv_gelu(x, conv), F.gelu(conv(x)), atol=1e-5, rtol=1e-5)


@needs_onednn
def test_conv_scaled_residual_adds_the_scaled_convolution_and_keeps_the_residual():
    conv, x = _conv(6, 4, 1), _input(6)
    residual = torch.randn(2, 4, 20, 24).contiguous(memory_format=CHANNELS_LAST)
    kept = residual.clone()
    scale = torch.randn(1, 4, 1, 1)
    with torch.no_grad():
        out = conv_scaled_residual(x, conv, residual, scale)
        torch.testing.assert_close(out, residual + conv(x) * scale, atol=1e-5, rtol=1e-5)
    assert torch.equal(residual, kept)


@needs_onednn
@pytest.mark.parametrize("batch", [1, 2])
def test_conv_scaled_residual_with_an_input_scale_per_image_and_channel(batch):
    # batch 1 folds the input scale into the weights; batch 2 multiplies the input first.
    conv = _conv(6, 4, 1)
    x = _input(6)[:batch].contiguous(memory_format=CHANNELS_LAST)
    residual = torch.randn(batch, 4, 20, 24).contiguous(memory_format=CHANNELS_LAST)
    scale = torch.randn(1, 4, 1, 1)
    input_scale = torch.rand(batch, 6, 1, 1)
    kept = x.clone()
    with torch.no_grad():
        out = conv_scaled_residual(x, conv, residual, scale, input_scale=input_scale)
        expected = residual + conv(x * input_scale) * scale
        torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
        # The unfused path (default layout) gives the same.
        plain = conv_scaled_residual(
            x.contiguous(), conv, residual.contiguous(), scale, input_scale=input_scale
        )
        torch.testing.assert_close(plain, expected, atol=1e-5, rtol=1e-5)
    assert torch.equal(x, kept)


@needs_onednn
@pytest.mark.parametrize("factor", [2, 3])
def test_conv_pixel_shuffle_is_the_shuffled_convolution(factor):
    torch.manual_seed(factor)
    conv = nn.Conv2d(6, 4 * factor**2, 1, bias=False)
    x = _input(6)
    expected = F.pixel_shuffle(conv(x), factor)
    with torch.no_grad():
        assert fusable(x, conv)
        out = conv_pixel_shuffle(x, conv, factor)
    assert out.shape == (2, 4, 20 * factor, 24 * factor)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    # With gradients, or with a bias, it is the plain pair.
    assert torch.equal(conv_pixel_shuffle(x, conv, factor), expected)
    biased = nn.Conv2d(6, 4 * factor**2, 1)
    with torch.no_grad():
        torch.testing.assert_close(
            conv_pixel_shuffle(x, biased, factor), F.pixel_shuffle(biased(x), factor)
        )


def test_what_cannot_be_fused_runs_the_plain_composition():
    conv, x = _conv(6, 6, 3, 6), _input(6)
    assert not fusable(x, conv)  # gradients are on
    assert not fusable(x.contiguous(), conv)
    assert not fusable(x.double(), copy.deepcopy(conv).double())
    with torch.no_grad():
        assert not fusable(x.contiguous(), conv)
        assert not fusable(x.bfloat16(), conv)  # bfloat16 input without autocast
        with torch.autocast("cpu", dtype=torch.float16):
            assert not fusable(x, conv)
    out = conv_gelu(x, conv)
    assert out.requires_grad
    torch.testing.assert_close(out, F.gelu(conv(x)))


def test_nafnet_inference_is_its_training_function_without_dropout(monkeypatch):
    torch.manual_seed(0)
    net = create_net(
        "nafnet", preset=None, width=4, encoder_blocks=(1,), middle_blocks=1, decoder_blocks=(1,)
    )
    for name, parameter in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            nn.init.normal_(parameter, std=0.5)  # zero at initialisation: make them count
    net = net.to(memory_format=CHANNELS_LAST)
    x = torch.rand(2, 3, 16, 20).contiguous(memory_format=CHANNELS_LAST)
    with torch.no_grad():
        training = net.train()(x)
        fused = net.eval()(x)
        monkeypatch.setattr(fused_conv, "_HAS_FUSED_KERNELS", False)
        plain = net(x)
    torch.testing.assert_close(fused, training, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(plain, training, atol=1e-6, rtol=1e-6)


def _bf16(t):
    return t.bfloat16().float()


@needs_onednn
def test_under_bfloat16_autocast_the_fused_kernels_run_in_bfloat16():
    # The reference rounds the operands to bfloat16 as the kernels do and computes in float32;
    # the kernels round their result to bfloat16 (8 significant bits).
    conv, x = _conv(6, 6, 3, 6), _input(6)
    head = _conv(6, 4, 1)
    residual = torch.randn(2, 4, 20, 24).contiguous(memory_format=CHANNELS_LAST)
    scale = torch.randn(1, 4, 1, 1)
    with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
        assert fusable(x, conv) and fusable(x.bfloat16(), conv)
        activated = conv_gelu(x, conv)
        out = conv_scaled_residual(activated, head, residual, scale)
    assert activated.dtype == out.dtype == torch.bfloat16
    expected = F.gelu(F.conv2d(_bf16(x), _bf16(conv.weight), _bf16(conv.bias), padding=1, groups=6))
    torch.testing.assert_close(activated.float(), expected, atol=2e-2, rtol=1e-2)
    folded = F.conv2d(activated.float(), _bf16(head.weight * scale.view(-1, 1, 1, 1)))
    expected = _bf16(residual) + folded + _bf16(head.bias * scale.view(-1))[None, :, None, None]
    torch.testing.assert_close(out.float(), expected, atol=3e-2, rtol=1e-2)


@needs_onednn
def test_nafnet_in_bfloat16_is_close_to_float32_and_to_the_unfused_bfloat16_path(monkeypatch):
    torch.manual_seed(0)
    net = create_net(
        "nafnet",
        preset=None,
        width=8,
        encoder_blocks=(1, 1),
        middle_blocks=1,
        decoder_blocks=(1, 1),
    )
    for name, parameter in net.named_parameters():
        if name.endswith(("beta", "gamma")):
            nn.init.normal_(parameter, std=0.5)
    net = net.eval().to(memory_format=CHANNELS_LAST)
    x = torch.rand(2, 3, 32, 24).contiguous(memory_format=CHANNELS_LAST)
    with torch.no_grad():
        reference = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            fused = net(x).float()
        monkeypatch.setattr(fused_conv, "_HAS_FUSED_KERNELS", False)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            plain = net(x).float()
    spread = reference.abs().max().item()
    assert (fused - reference).abs().max().item() < 0.03 * spread
    # The fused path is no further from float32 than PyTorch's own bfloat16 path, give or take.
    fused_error = (fused - reference).pow(2).mean().sqrt()
    plain_error = (plain - reference).pow(2).mean().sqrt()
    assert fused_error < 2 * plain_error + 1e-4


@needs_onednn
@pytest.mark.parametrize("groups", [1, 12])
def test_conv_gelu_of_a_channel_slice_is_gelu_of_that_part_of_the_convolution(groups):
    conv, x = _conv(12, 12, 3, groups), _input(12)
    part = slice(0, 6)
    with torch.no_grad():
        full = F.gelu(conv(x))[:, part]
        # A depthwise slice reads the matching input channels only; a dense one all of them.
        sliced_input = x[:, part].contiguous(memory_format=CHANNELS_LAST) if groups > 1 else x
        torch.testing.assert_close(
            conv_gelu(sliced_input, conv, channels=part), full, atol=1e-5, rtol=1e-5
        )
        grouped = _conv(12, 12, 3, groups=3)
        with pytest.raises(ValueError, match="not depthwise"):
            conv_gelu(x, grouped, channels=part)


def test_restormer_inference_is_its_training_function(monkeypatch):
    """The fused gate (depthwise convolution + GELU) changes nothing but float rounding."""
    net = create_net("restormer", preset="small").eval().to(memory_format=CHANNELS_LAST)
    x = torch.rand(1, 3, 24, 32).contiguous(memory_format=CHANNELS_LAST)
    with torch.no_grad():
        fused = net(x)
    with torch.enable_grad():
        plain = net(x)
    torch.testing.assert_close(fused, plain.detach(), atol=1e-5, rtol=1e-5)
