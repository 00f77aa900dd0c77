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
        with torch.autocast("cpu", dtype=torch.bfloat16):
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
