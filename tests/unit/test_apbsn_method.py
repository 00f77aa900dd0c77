"""AP-BSN: PD mosaic around the backbone, scaling, R3 at full resolution, shapes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amsnet.methods import APBSN


class Recorder(nn.Module):
    size_multiple = 1
    blind_spot = True

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, 1)
        self.calls: list[tuple[int, ...]] = []
        self.max_input = 0.0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls.append(tuple(x.shape))
        self.max_input = max(self.max_input, float(x.max()))
        return self.conv(x)


class Identity(nn.Module):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x


def test_training_uses_the_pd5_mosaic_and_the_255_scale():
    backbone = Recorder()
    method = APBSN(backbone)
    loss = method.training_loss(torch.rand(2, 3, 40, 40))
    assert backbone.calls == [(2, 3, 40 + 2 * 5 * 2, 40 + 2 * 5 * 2)]
    assert backbone.max_input > 1.5  # the backbone works in [0, 255]
    loss.loss.backward()
    assert backbone.conv.weight.grad is not None


def test_identity_backbone_reproduces_the_input_at_any_size():
    method = APBSN(Identity())
    noisy = torch.rand(1, 3, 21, 30)
    assert torch.allclose(method.denoise(noisy), noisy, atol=1e-6)
    assert torch.allclose(method.denoise(noisy, refine=True), noisy, atol=1e-6)


def test_refinement_runs_all_passes_of_a_small_image_at_full_resolution_in_one_call():
    backbone = Recorder()
    APBSN(backbone).denoise(torch.rand(1, 3, 16, 16), refine=True)
    assert backbone.calls == [(1, 3, 16 + 8, 16 + 8), (8, 3, 16 + 4, 16 + 4)]


def test_refinement_of_a_large_image_runs_one_pass_per_call_by_default():
    backbone = Recorder()
    APBSN(backbone).denoise(torch.rand(1, 3, 256, 256), refine=True)
    assert backbone.calls[1:] == [(1, 3, 256 + 4, 256 + 4)] * 8


@pytest.mark.parametrize("refine", [False, True])
def test_denoise_is_deterministic_and_keeps_odd_sizes(refine):
    method = APBSN(Recorder())
    noisy = torch.rand(2, 3, 17, 23)
    a = method.denoise(noisy, refine=refine)
    b = method.denoise(noisy, refine=refine)
    assert a.shape == noisy.shape and torch.equal(a, b)
