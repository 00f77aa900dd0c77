"""The supervised reference: L1 to the ground truth, one-pass inference, weights round trip."""

from __future__ import annotations

import pytest
import torch

from amsnet.build import build_method, model_config
from amsnet.checkpoint import load_pretrained, save_pretrained
from amsnet.errors import ConfigError, ShapeError
from amsnet.methods import Supervised
from amsnet.nets import create_net
from tests.nets_tiny import TINY


@pytest.fixture
def method() -> Supervised:
    return Supervised(create_net("dncnn", preset=None, **TINY["dncnn"]))


def test_training_loss_is_l1_between_the_output_and_the_clean_image(method, generator):
    noisy = torch.rand(2, 3, 20, 24, generator=generator)
    clean = torch.rand(2, 3, 20, 24, generator=generator)
    output = method.training_loss(noisy, clean=clean)
    expected = (method.backbone(noisy) - clean).abs().mean()
    assert torch.allclose(output.loss, expected) and set(output.terms) == {"l1"}
    output.loss.backward()
    assert all(p.grad is not None for p in method.parameters())


def test_training_without_clean_images_is_refused(method):
    with pytest.raises(ConfigError, match="paired data"):
        method.training_loss(torch.rand(1, 3, 8, 8))
    with pytest.raises(ShapeError, match="one shape"):
        method.training_loss(torch.rand(1, 3, 8, 8), clean=torch.rand(1, 3, 8, 9))


def test_denoise_is_one_backbone_pass_in_eval_mode(method, generator):
    noisy = torch.rand(1, 3, 17, 23, generator=generator)
    method.train()
    denoised = method.denoise(noisy)
    method.backbone.eval()
    with torch.no_grad():
        assert torch.equal(denoised, method.backbone(noisy))
    method.backbone.train()
    assert method.backbone.training  # its mode was restored


def test_refinement_is_refused_with_a_reason(method):
    with pytest.raises(ConfigError, match="variant B"):
        method.denoise(torch.rand(1, 3, 8, 8), refine=True)


def test_weights_round_trip_and_build(tmp_path, method):
    assert model_config(method)["method"] == {"name": "supervised"}
    loaded = load_pretrained(save_pretrained(method, tmp_path / "s.safetensors"))
    noisy = torch.rand(1, 3, 16, 16)
    assert isinstance(loaded, Supervised)
    assert torch.equal(loaded.denoise(noisy), method.denoise(noisy))
    built = build_method({"method": {"name": "supervised"}, "net": {"name": "unet", "width": 8}})
    assert isinstance(built, Supervised)
