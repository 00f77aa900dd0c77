"""AMSNet: blindness of the training path, stitching, batching, determinism, L_t."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amsnet.errors import ConfigError, ShapeError
from amsnet.methods import AMSNet
from amsnet.ops.pixel_shuffle import pd_down


class Recorder(nn.Module):
    """A tiny ordinary CNN that remembers its inputs and outputs and counts its calls."""

    size_multiple = 1
    blind_spot = False

    def __init__(self, channels: int = 3) -> None:
        super().__init__()
        self.body = nn.Sequential(
            nn.Conv2d(channels, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, channels, 3, padding=1)
        )
        self.calls: list[tuple[int, ...]] = []
        self.last_input: torch.Tensor | None = None
        self.last_output: torch.Tensor | None = None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        self.last_input = x
        self.last_output = self.body(x)
        return self.last_output


class Identity(nn.Module):
    size_multiple = 1
    blind_spot = False

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


class Constant(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.full_like(x, 0.75)


@pytest.mark.parametrize("fill", ["zero", "neighbour_mean"])
def test_training_path_is_blind_to_the_hidden_pixel_itself(fill, generator):
    """d(backbone output at a hidden pixel) / d(noisy value of that pixel) == 0, exactly."""
    backbone = Recorder()
    method = AMSNet(backbone, pd_factor_train=2, num_masks=2, mask_fill=fill)
    noisy = torch.rand(1, 3, 12, 12, requires_grad=True)
    method.training_loss(noisy, generator=generator)
    inputs, outputs = backbone.last_input, backbone.last_output
    f = 2
    hidden = (inputs != pd_down(noisy, f)).all(dim=1)  # replaced in every channel
    checked = 0
    for n, y, x in hidden.nonzero()[:12].tolist():
        (grad,) = torch.autograd.grad(outputs[n, :, y, x].sum(), noisy, retain_graph=True)
        i, j = divmod(n % (f * f), f)
        own = grad[0, :, y * f + i, x * f + j]
        assert torch.equal(own, torch.zeros(3)), "the hidden pixel leaks into its prediction"
        assert grad.abs().sum() > 0, "the prediction must depend on visible neighbours"
        checked += 1
    assert checked == 12


def test_the_mask_is_shared_over_channels(generator):
    backbone = Recorder()
    AMSNet(backbone).training_loss(torch.rand(2, 3, 20, 20) + 0.1, generator=generator)
    zero = backbone.last_input == 0
    assert torch.equal(zero.all(dim=1), zero.any(dim=1))
    assert 0.3 < zero.float().mean() < 0.7


@pytest.mark.parametrize(
    ("masking", "k"), [("complementary", 2), ("complementary", 4), ("excessive", 4)]
)
def test_every_pixel_comes_from_a_branch_that_hid_it(masking, k):
    # Hidden pixels are 0 in the backbone's input; with the identity as backbone the
    # stitched output is 0 everywhere exactly when each pixel was taken from hiding branches.
    method = AMSNet(Identity(), num_masks=k, masking=masking)
    noisy = torch.rand(2, 3, 18, 22) + 0.5
    assert torch.equal(method.denoise(noisy), torch.zeros_like(noisy))
    assert torch.equal(method.denoise(noisy, refine=True), torch.zeros_like(noisy))


def test_excessive_masking_hides_k_minus_1_of_k(generator):
    backbone = Recorder()
    method = AMSNet(backbone, num_masks=4, masking="excessive", pd_factor_train=2)
    method.training_loss(torch.rand(4, 3, 40, 40) + 0.1, generator=generator)
    hidden_share = (backbone.last_input == 0).float().mean()
    assert 0.72 < hidden_share < 0.78


def test_constant_backbone_gives_a_constant_image():
    noisy = torch.rand(1, 3, 10, 14)
    for masking, k in (("complementary", 2), ("excessive", 3)):
        out = AMSNet(Constant(), num_masks=k, masking=masking).denoise(noisy)
        assert torch.allclose(out, torch.full_like(noisy, 0.75))


def test_all_k_branches_run_in_one_backbone_call():
    backbone = Recorder()
    method = AMSNet(backbone, num_masks=3, pd_factor_eval=2)
    method.denoise(torch.rand(2, 3, 16, 16))
    assert backbone.calls == [(3 * 2 * 4, 3, 8, 8)]
    backbone.calls.clear()
    method.denoise(torch.rand(1, 3, 16, 16), refine=True)
    # one call for the base estimate, one for all 8 R3 passes x 3 branches at full size
    assert backbone.calls == [(3 * 4, 3, 8, 8), (8 * 3, 3, 16, 16)]


def test_refinement_passes_per_call_default_to_a_pixel_limit():
    """By default one R3 call holds at most REFINE_CALL_PIXELS input pixels (one pass for a
    256x256 image on the CPU, ~2x the base pass's memory instead of 9x); an explicit
    ``refine_batch`` still rules."""
    from amsnet.ops.refine import REFINE_CALL_PIXELS

    backbone = Recorder()
    method = AMSNet(backbone, num_masks=2, pd_factor_eval=2)
    side = 256
    method.denoise(torch.rand(1, 3, side, side), refine=True)
    refinement = backbone.calls[1:]
    assert len(refinement) == 8
    assert all(call[0] * call[2] * call[3] <= 2 * REFINE_CALL_PIXELS["cpu"] for call in refinement)
    backbone.calls.clear()
    method.denoise(torch.rand(1, 3, side, side), refine=True, refine_batch=8)
    assert backbone.calls[1:] == [(8 * 2, 3, side, side)]


@pytest.mark.parametrize(
    ("branches", "calls"), [("first", [(2 * 25, 3, 8, 8)]), ("all", [(2 * 2 * 25, 3, 8, 8)])]
)
def test_loss_branches(branches, calls, generator):
    backbone = Recorder()
    AMSNet(backbone, loss_branches=branches).training_loss(
        torch.rand(2, 3, 40, 40), generator=generator
    )
    assert backbone.calls == calls


def test_loss_is_taken_on_hidden_pixels_only(generator):
    # The identity backbone reproduces visible pixels exactly and outputs 0 at hidden ones, so
    # a loss over all pixels would be smaller than the masked loss, which equals mean |x|
    # over hidden pixels (about the image mean for a random mask).
    noisy = torch.full((2, 3, 20, 20), 0.6)
    loss = AMSNet(Identity()).training_loss(noisy, generator=generator).loss
    assert torch.isclose(loss, torch.tensor(0.6))


def test_padding_pixels_never_enter_the_loss(generator):
    method = AMSNet(Identity(), pd_factor_train=5)
    noisy = torch.rand(1, 3, 21, 23)
    inside = method._inside(noisy, 5, (0, 2, 0, 4))
    assert inside.shape == (25, 1, 5, 5)
    assert int(inside.sum()) == 21 * 23
    assert torch.isfinite(method.training_loss(noisy, generator=generator).loss)


@pytest.mark.parametrize("size", [(1, 3, 37, 41), (2, 3, 8, 8), (1, 1, 5, 3), (1, 3, 1, 1)])
@pytest.mark.parametrize("refine", [False, True])
def test_denoise_keeps_shape_and_is_deterministic(size, refine):
    method = AMSNet(Recorder(size[1]))
    noisy = torch.rand(size)
    a = method.denoise(noisy, refine=refine)
    b = method.denoise(noisy, generator=torch.Generator().manual_seed(0), refine=refine)
    assert a.shape == noisy.shape and torch.equal(a, b)
    c = method.denoise(noisy, generator=torch.Generator().manual_seed(1), refine=refine)
    assert not torch.equal(a, c) or noisy.numel() <= 3


def test_denoise_needs_no_grad_and_restores_training_mode():
    method = AMSNet(nn.Sequential(nn.Conv2d(3, 3, 3, padding=1), nn.BatchNorm2d(3)))
    method.train()
    stats = method.backbone[1].running_mean.clone()
    out = method.denoise(torch.rand(1, 3, 16, 16))
    assert not out.requires_grad
    assert method.training and method.backbone.training
    assert torch.equal(stats, method.backbone[1].running_mean)


def test_finetune_loss_terms_and_gradients(generator):
    backbone = Recorder()
    method = AMSNet(backbone, colour_weight=0.5, smoothness_weight=0.01)
    out = method.finetune_loss(torch.rand(1, 3, 20, 20), generator=generator)
    assert set(out.terms) == {"fidelity_l1", "smoothness", "colour"}
    expected = out.terms["fidelity_l1"] + 0.01 * out.terms["smoothness"] + 0.5 * out.terms["colour"]
    assert torch.isclose(out.loss, expected)
    out.loss.backward()
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in backbone.parameters())
    # the fine-tuning output uses all branches at the training PD stride by default
    assert backbone.calls[-1] == (2 * 25, 3, 4, 4)


def test_finetune_pd_factor_is_configurable(generator):
    backbone = Recorder()
    AMSNet(backbone, pd_factor_finetune=2).finetune_loss(
        torch.rand(1, 3, 20, 20), generator=generator
    )
    assert backbone.calls[-1] == (2 * 4, 3, 10, 10)


def test_settings_are_validated():
    with pytest.raises(ConfigError, match="num_masks"):
        AMSNet(Identity(), num_masks=1)
    with pytest.raises(ConfigError, match="excessive"):
        AMSNet(Identity(), masking="excessive", num_masks=2)
    with pytest.raises(ConfigError, match="partition"):
        AMSNet(Identity(), partition="random")
    with pytest.raises(TypeError):
        AMSNet(Identity(), num_mask=3)


def test_bad_input_raises_shape_error():
    with pytest.raises(ShapeError, match="unsqueeze"):
        AMSNet(Identity()).denoise(torch.rand(3, 8, 8))


def test_neighbour_mean_fill_uses_only_visible_neighbours():
    from amsnet.ops.masks import hide

    images = torch.arange(9.0).view(1, 1, 3, 3).repeat(1, 2, 1, 1)
    visible = torch.ones(1, 1, 3, 3, dtype=torch.bool)
    visible[0, 0, 1, 1] = visible[0, 0, 0, 0] = False
    out = hide(images, visible, "neighbour_mean")
    # centre: mean of the 7 visible neighbours (1, 2, 3, 5, 6, 7, 8); corner: of 1, 3 (4 is hidden)
    assert torch.allclose(out[0, :, 1, 1], torch.full((2,), 32 / 7))
    assert torch.allclose(out[0, :, 0, 0], torch.full((2,), 2.0))
    assert torch.equal(out[0, :, 2, 2], images[0, :, 2, 2])
    assert torch.equal(hide(images, visible, "zero")[0, :, 1, 1], torch.zeros(2))


def test_neighbour_mean_fill_falls_back_to_wider_windows_never_to_zero():
    from amsnet.ops.masks import hide

    images = torch.arange(49.0).view(1, 1, 7, 7)
    visible = torch.ones(1, 1, 7, 7, dtype=torch.bool)
    visible[..., 2:5, 2:5] = False  # the centre's 8 neighbours are all hidden
    out = hide(images, visible, "neighbour_mean")
    ring5 = [images[0, 0, r, c] for r in range(1, 6) for c in range(1, 6) if visible[0, 0, r, c]]
    assert torch.isclose(out[0, 0, 3, 3], torch.stack(ring5).mean())
    visible[..., 1:6, 1:6] = False  # nothing visible within 5x5 either: the image's mean
    out = hide(images, visible, "neighbour_mean")
    assert torch.isclose(out[0, 0, 3, 3], images[visible.expand_as(images)].mean())


def test_neighbour_mean_fill_keeps_every_pixel_from_a_hiding_branch():
    # With a constant image every fill is the constant, and the identity backbone returns the
    # fill: never the pixel's own value, and never a black hole.
    method = AMSNet(Identity(), mask_fill="neighbour_mean")
    noisy = torch.full((1, 3, 16, 16), 0.3)
    torch.testing.assert_close(method.denoise(noisy), noisy)


@pytest.mark.parametrize("refine", [False, True])
def test_pixel_keyed_tiles_reproduce_the_whole_image(refine):
    """With position-keyed masks and a pointwise backbone (no spatial context), denoising a
    tile gives exactly the whole image's pixels: tiling changes nothing but border effects."""
    from amsnet.ops.masks import PixelKey

    torch.manual_seed(0)
    method = AMSNet(torch.nn.Conv2d(3, 3, 1), pd_factor_eval=2)
    noisy = torch.rand(1, 3, 24, 32)
    whole = method.denoise(noisy, pixel_key=PixelKey(9), refine=refine)
    tile = method.denoise(noisy[..., 8:24, 12:32], pixel_key=PixelKey(9, 8, 12), refine=refine)
    assert torch.allclose(tile, whole[..., 8:24, 12:32], atol=1e-6)
    chunked = method.denoise(noisy, pixel_key=PixelKey(9), refine=refine, refine_batch=3)
    assert torch.allclose(chunked, whole, atol=1e-6)


def test_pixel_keyed_masks_need_the_uniform_partition():
    from amsnet.ops.masks import PixelKey

    with pytest.raises(ConfigError, match="uniform"):
        AMSNet(Identity(), partition="balanced").denoise(
            torch.rand(1, 3, 8, 8), pixel_key=PixelKey(0)
        )
