"""Tiled inference: equal to whole-image inference, memory planning, out-of-memory retries."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ConfigError
from amsnet.inference import (
    balanced_tile,
    denoise_image,
    measure_bytes_per_pixel,
    plan_tiles,
    TilePlan,
)
from amsnet.methods import AMSNet, APBSN
from amsnet.metrics import psnr
from amsnet.nets import create_net
from amsnet.ops.tiling import tile_grid
from amsnet.training.fit import fit_images
from tests.nets_tiny import TINY


@pytest.fixture(scope="module")
def trained():
    """A tiny AMSNet fitted for a few seconds on a noisy photo crop, and that crop."""
    skimage = pytest.importorskip("skimage.data")
    from amsnet.data.camera_noise import camera_noise
    from amsnet.data.io import from_uint8

    clean = from_uint8(skimage.astronaut())[:, 100:292, 150:342]
    noisy, reference, _ = camera_noise(clean[None], seed=1, iso_like_level="high")
    torch.manual_seed(0)
    method = AMSNet(
        create_net("unet", preset=None, width=8, output_width=8),
        pd_factor_train=2,
        pd_factor_eval=1,
        mask_fill="neighbour_mean",
    )
    fit_images(method, [noisy[0]], crop=64, batch_size=4, steps=150, lr=3e-3)
    return method.eval(), noisy[0], reference[0]


@pytest.mark.parametrize("refine", [False, True])
def test_tiled_equals_untiled_within_0_05_db(trained, refine):
    method, noisy, clean = trained
    whole = denoise_image(method, noisy, refine=refine)
    plan = plan_tiles(method, *noisy.shape[1:], tile=128, overlap=64)
    assert plan.tile == 128
    tiled = denoise_image(method, noisy, refine=refine, plan=plan)
    gap = float(psnr(tiled[None], clean[None]) - psnr(whole[None], clean[None]))
    assert abs(gap) < 0.05, gap


def test_integer_input_gives_the_float_result(trained):
    from amsnet.data.io import from_uint8, to_uint8

    method, noisy, _ = trained
    array = to_uint8(noisy)
    assert torch.equal(denoise_image(method, array), denoise_image(method, from_uint8(array)))


def test_tile_size_follows_the_memory_budget_and_alignment():
    method = AMSNet(create_net("unet", preset=None, **TINY["unet"]))  # aligns to 2 * 32
    plan = plan_tiles(method, 4000, 6000, memory_budget=64 * 2**20, bytes_per_pixel=4096)
    assert plan.tile is not None and plan.tile % 64 == 0 and plan.align == 64
    assert plan.tile**2 * 4096 <= 64 * 2**20
    small = plan_tiles(method, 100, 80, memory_budget=64 * 2**20, bytes_per_pixel=4096)
    assert small.tile is None  # the whole image fits
    assert plan_tiles(method, 100, 80, tile=0).tile is None
    assert plan_tiles(method, 1000, 800, tile=200).tile == 192


def test_budget_tiles_are_balanced_rather_than_as_large_as_the_budget_allows():
    method = APBSN(create_net("dbsnl", preset=None, **TINY["dbsnl"]))  # aligns to 2
    # The budget allows 478-pixel tiles: four of them would cover 512x512 3.5 times over.
    budget, cost = 478 * 478 * 2917, 2917
    plan = plan_tiles(method, 512, 512, memory_budget=budget, bytes_per_pixel=cost)
    assert plan.tile == 288 and len(tile_grid(512, 512, plan.tile, plan.overlap, 2)) == 4
    wide = plan_tiles(method, 300, 2000, memory_budget=budget, bytes_per_pixel=cost)
    grid = tile_grid(300, 2000, wide.tile, wide.overlap, 2)
    assert wide.tile <= 478 and len(grid) == 5  # ceil((2000 - 64) / (478 - 64)) = 5 columns
    assert sum(t.height * t.width for t in grid) < 1.2 * 300 * 2000
    assert balanced_tile(4000, 6000, 100, 64, 2) == 100  # many small tiles: no change
    assert APBSN(create_net("dbsnl", preset=None, **TINY["dbsnl"])).settings.pd_factor_eval == 2


def test_refinement_passes_per_call_fit_the_budget(monkeypatch):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    budget, cost = 64 * 2**20, 4096
    # 100 x 80 pixels x 4096 bytes = 31 MiB per pass: two passes per call fit in 64 MiB.
    small = plan_tiles(method, 100, 80, memory_budget=budget, bytes_per_pixel=cost)
    assert (small.tile, small.refine_batch) == (None, 2)
    tiny = plan_tiles(method, 20, 20, memory_budget=budget, bytes_per_pixel=cost)
    assert tiny.refine_batch == budget // (400 * cost)  # more than the passes: all at once
    tiled = plan_tiles(method, 4000, 6000, memory_budget=budget, bytes_per_pixel=cost)
    assert tiled.refine_batch == 1
    assert TilePlan(64, 8, 2, 0.0).refine_batch == 1
    assert TilePlan(None, 8, 2, 0.0).refine_batch is None

    seen = []
    original = method.denoise

    def spy(batch, **kwargs):
        seen.append(kwargs["refine_batch"])
        return original(batch, **kwargs)

    monkeypatch.setattr(method, "denoise", spy)
    denoise_image(method, torch.rand(3, 100, 80), refine=True, plan=small)
    assert seen == [2]


def test_bytes_per_pixel_is_measured():
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    assert measure_bytes_per_pixel(method) >= 2048


def test_out_of_memory_halves_the_tiles(monkeypatch):
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    original = method.denoise
    seen = []

    def flaky(batch, **kwargs):
        seen.append(batch.shape[-1])
        if batch.shape[-1] > 32:
            raise torch.cuda.OutOfMemoryError("simulated")
        return original(batch, **kwargs)

    monkeypatch.setattr(method, "denoise", flaky)
    out = denoise_image(method, torch.rand(3, 64, 64), plan=TilePlan(64, 8, 2, 0.0))
    assert out.shape == (3, 64, 64) and 32 in seen and max(seen) == 64


class _Orientation(torch.nn.Module):
    """A "denoiser" that adds a ramp along the width: its error depends on the orientation,
    and over the eight transforms it averages to a constant."""

    accepts_pixel_key = False

    def __init__(self):
        super().__init__()
        self.backbone = torch.nn.Conv2d(3, 3, 1)  # unused: where inference looks for a dtype

    def denoise(self, noisy, *, generator=None, refine=False, refine_batch=None, pixel_key=None):
        ramp = torch.linspace(0, 1, noisy.shape[-1])
        return noisy + ramp


def test_the_self_ensemble_averages_the_transforms_and_tiles_the_same():
    image = torch.rand(3, 40, 56)
    method = _Orientation().eval()
    plain = denoise_image(method, image)
    assert torch.allclose(plain - image, torch.linspace(0, 1, 56).expand(3, 40, 56))
    both = denoise_image(method, image, ensemble=2)  # identity and the horizontal flip
    assert torch.allclose(both, image + 0.5, atol=1e-6)
    eight = denoise_image(method, image, ensemble=8)
    assert torch.allclose(eight, image + 0.5, atol=1e-6)
    plan = TilePlan(32, 8, 1, 0.0)
    calls = []
    tiled = denoise_image(
        method, image, ensemble=8, plan=plan, progress=lambda d, t: calls.append((d, t))
    )
    # Each tile's ramp spans the tile, so tiles change the result; the progress counts all
    # transforms' tiles once, in order, up to the total.
    assert tiled.shape == image.shape
    totals = {t for _, t in calls}
    assert len(totals) == 1 and [d for d, _ in calls] == list(range(1, totals.pop() + 1))
    with pytest.raises(Exception, match="ensemble must be a whole number"):
        denoise_image(method, image, ensemble=0)


def test_strength_puts_back_its_share_of_the_removed_noise_tiled_and_ensembled():
    image = torch.rand(3, 40, 56)
    method = _Orientation().eval()
    plan = TilePlan(32, 8, 1, 0.0)
    for ensemble in (1, 4):
        full = denoise_image(method, image, ensemble=ensemble, plan=plan)
        assert torch.equal(denoise_image(method, image, ensemble=ensemble, plan=plan), full)
        for strength in (0.0, 0.3, 1.0):
            blended = denoise_image(method, image, ensemble=ensemble, plan=plan, strength=strength)
            assert torch.allclose(blended, image + strength * (full - image), atol=1e-6)
    integer = (image.permute(1, 2, 0) * 255).round().to(torch.uint8).numpy()
    as_float = torch.from_numpy(integer).permute(2, 0, 1).float() / 255
    assert torch.allclose(denoise_image(method, integer, strength=0.0), as_float, atol=1e-6)
    for bad in (-0.1, 1.5, float("nan"), "0.5", True):
        with pytest.raises(ConfigError, match="strength"):
            denoise_image(method, image, strength=bad)
