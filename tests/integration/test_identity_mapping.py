"""Supplement section 1.8: with an ordinary CNN, masking avoids the identity map.

An ordinary network (no blind spot, unrestricted receptive field) is trained on one image with
independent Gaussian noise (no PD). With AMSNet's masked loss it learns to denoise; with AP-BSN's
loss (L1 over all pixels, what a blind-spot network makes valid) the same network learns to
copy its input and ends near the noisy image's PSNR.
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from amsnet.methods import AMSNet, APBSN

skimage_data = pytest.importorskip("skimage.data")

SIGMA = 50 / 255
STEPS = 600


def ordinary_cnn(width: int = 32) -> nn.Module:
    layers: list[nn.Module] = [nn.Conv2d(3, width, 3, padding=1), nn.ReLU()]
    for _ in range(4):
        layers += [nn.Conv2d(width, width, 3, padding=1), nn.ReLU()]
    return nn.Sequential(*layers, nn.Conv2d(width, 3, 3, padding=1))


def psnr(image: torch.Tensor, clean: torch.Tensor) -> float:
    return float(10 * torch.log10(1 / (image.clamp(0, 1) - clean).square().mean()))


def train(method: nn.Module, noisy: torch.Tensor) -> None:
    optimiser = torch.optim.Adam(method.parameters(), lr=2e-3)
    g = torch.Generator().manual_seed(1)
    size = noisy.shape[-1]
    for _ in range(STEPS):
        ys = torch.randint(0, size - 32, (16,), generator=g).tolist()
        xs = torch.randint(0, size - 32, (16,), generator=g).tolist()
        batch = torch.stack(
            [noisy[0, :, y : y + 32, x : x + 32] for y, x in zip(ys, xs, strict=True)]
        )
        loss = method.training_loss(batch, generator=g).loss
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()


@pytest.mark.slow
def test_amsnet_denoises_where_the_all_pixel_loss_learns_the_identity():
    image = torch.from_numpy(skimage_data.astronaut()).float().div(255).permute(2, 0, 1)[None]
    clean = F.avg_pool2d(image, 2)[..., 60:188, 60:188]
    noisy = clean + SIGMA * torch.randn(clean.shape, generator=torch.Generator().manual_seed(0))
    baseline = psnr(noisy, clean)

    torch.manual_seed(0)
    amsnet = AMSNet(ordinary_cnn(), pd_factor_train=1, pd_factor_eval=1)
    train(amsnet, noisy)
    torch.manual_seed(0)
    copier = APBSN(ordinary_cnn(), pd_factor_train=1, pd_factor_eval=1, pd_pad=0, value_scale=1.0)
    train(copier, noisy)

    gain_amsnet = psnr(amsnet.denoise(noisy), clean) - baseline
    gain_copier = psnr(copier.denoise(noisy), clean) - baseline
    assert gain_amsnet > 3.0, f"AMSNet gained only {gain_amsnet:.2f} dB"
    assert abs(gain_copier) < 1.0, f"the all-pixel loss moved {gain_copier:.2f} dB from the input"
