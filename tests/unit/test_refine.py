"""R3: shapes, determinism, the two mask forms, batching of the passes."""

from __future__ import annotations

import pytest
import torch

from amsnet.errors import ShapeError
from amsnet.ops.refine import (
    default_passes_per_call,
    random_replace_refine,
    REFINE_CALL_PIXELS,
    REFINE_CALL_PIXELS_ACCELERATOR,
)


def identity(batch: torch.Tensor, passes: range) -> torch.Tensor:
    return batch


def test_shape_and_determinism(generator):
    noisy, denoised = torch.rand(2, 3, 9, 11), torch.rand(2, 3, 9, 11)

    def run(seed):
        g = torch.Generator().manual_seed(seed)
        return random_replace_refine(noisy, denoised, identity, generator=g)

    assert run(0).shape == noisy.shape
    assert torch.equal(run(0), run(0))
    assert not torch.equal(run(0), run(1))


@pytest.mark.parametrize("per_channel", [False, True])
def test_mask_is_shared_over_channels_only_in_amsnet_form(per_channel):
    noisy, denoised = torch.ones(1, 3, 40, 40), torch.zeros(1, 3, 40, 40)
    g = torch.Generator().manual_seed(0)
    # With the identity as "network" and one pass, the output is the replacement mask itself.
    mask = random_replace_refine(
        noisy, denoised, identity, generator=g, passes=1, ratio=0.3, per_channel=per_channel
    )
    same_over_channels = bool((mask == mask[:, :1]).all())
    assert same_over_channels is not per_channel
    assert abs(mask.mean().item() - 0.3) < 0.05


def test_all_passes_run_in_one_batched_call():
    calls = []

    def network(batch, passes):
        calls.append(batch.shape[0])
        assert len(passes) * 2 == batch.shape[0]
        return batch

    noisy = torch.rand(2, 3, 8, 8)
    g = torch.Generator().manual_seed(0)
    random_replace_refine(noisy, noisy, network, generator=g, passes=8)
    assert calls == [16]
    calls.clear()
    random_replace_refine(noisy, noisy, network, generator=g, passes=8, passes_per_call=3)
    assert calls == [6, 6, 4]


def test_passes_per_call_does_not_change_the_result_on_cpu():
    noisy, denoised = torch.rand(1, 3, 12, 12), torch.rand(1, 3, 12, 12)

    def run(chunk):
        g = torch.Generator().manual_seed(3)
        return random_replace_refine(
            noisy, denoised, lambda x, _: torch.sin(x), generator=g, passes=8, passes_per_call=chunk
        )

    assert torch.allclose(run(None), run(3), atol=1e-6)


def test_averages_the_passes():
    noisy, denoised = torch.ones(1, 1, 64, 64), torch.zeros(1, 1, 64, 64)
    g = torch.Generator().manual_seed(0)
    out = random_replace_refine(noisy, denoised, identity, generator=g, passes=8, ratio=0.16)
    values = torch.unique(out * 8)
    assert torch.allclose(values, values.round())  # k/8 for some k: a mean of 8 binary masks
    assert abs(out.mean().item() - 0.16) < 0.02


def test_bad_arguments_raise():
    g = torch.Generator()
    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ShapeError, match="shape"):
        random_replace_refine(x, torch.rand(1, 3, 4, 5), identity, generator=g)
    with pytest.raises(ShapeError, match="passes"):
        random_replace_refine(x, x, identity, generator=g, passes=0)
    with pytest.raises(ShapeError, match="ratio"):
        random_replace_refine(x, x, identity, generator=g, ratio=1.5)


def test_pixel_keyed_masks_depend_on_position_not_on_tiles_or_chunks():
    from amsnet.ops.masks import PixelKey

    noisy, denoised = torch.ones(1, 3, 16, 20), torch.zeros(1, 3, 16, 20)

    def masks(x, key, chunk=None):
        return random_replace_refine(
            x, torch.zeros_like(x), identity, pixel_key=key, passes=4, passes_per_call=chunk
        )

    whole = masks(noisy, PixelKey(3))
    assert torch.equal(whole, masks(noisy, PixelKey(3), chunk=1))
    tile = masks(noisy[..., 4:12, 8:20], PixelKey(3, top=4, left=8))
    assert torch.equal(tile, whole[..., 4:12, 8:20])
    assert not torch.equal(whole, masks(noisy, PixelKey(4)))
    assert 0.08 < whole.mean() < 0.24 and denoised.sum() == 0


def test_exactly_one_source_of_randomness():
    from amsnet.ops.masks import PixelKey

    x = torch.rand(1, 3, 4, 4)
    with pytest.raises(ShapeError, match="exactly one"):
        random_replace_refine(x, x, identity)
    with pytest.raises(ShapeError, match="exactly one"):
        random_replace_refine(x, x, identity, generator=torch.Generator(), pixel_key=PixelKey(0))


def test_default_passes_per_call_keeps_a_call_within_the_pixel_limit():
    limit = REFINE_CALL_PIXELS["cpu"]
    assert default_passes_per_call(torch.zeros(1, 3, 256, 256), 8) == max(1, limit // 256**2)
    assert default_passes_per_call(torch.zeros(1, 3, 1024, 1024), 8) == 1  # never 0
    assert default_passes_per_call(torch.zeros(2, 3, 32, 32), 8) == 8  # never above passes
    assert default_passes_per_call(torch.zeros(4, 3, 64, 64), 8) == limit // (4 * 64 * 64)
    # Accelerators batch more (kernel launches, not memory, bound small batches there).
    meta = torch.zeros(1, 3, 256, 256, device="meta")
    assert default_passes_per_call(meta, 8) == REFINE_CALL_PIXELS_ACCELERATOR // 256**2
