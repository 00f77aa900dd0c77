"""CUDA checks (marker ``gpu``; run with ``pytest -m gpu`` on a machine with a GPU)."""

from __future__ import annotations

import pytest
import torch

from amsnet.checkpoint import load_pretrained, save_pretrained
from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net, list_nets
from amsnet.runtime import prepare_for_inference, resolve_device

pytestmark = [
    pytest.mark.gpu,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]


@pytest.mark.parametrize("name", list_nets())
def test_cuda_matches_cpu_with_the_same_masks(name, monkeypatch):
    # TF32 convolutions and matrix products (cuDNN's default) differ from fp32 by ~1e-3.
    monkeypatch.setattr(torch.backends.cudnn, "allow_tf32", False)
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", False)
    torch.manual_seed(0)
    cls = APBSN if name == "dbsnl" else AMSNet
    method = cls(create_net(name, preset="small")).eval()
    noisy = torch.rand(1, 3, 61, 47)
    expected = method.denoise(noisy, generator=torch.Generator().manual_seed(3), refine=True)
    gpu = prepare_for_inference(method, "cuda")
    # A CPU generator draws the same masks; they are moved to the GPU.
    got = gpu.denoise(noisy.cuda(), generator=torch.Generator().manual_seed(3), refine=True)
    assert torch.allclose(got.cpu(), expected, atol=2e-4), (got.cpu() - expected).abs().max()


def test_cuda_generator_is_deterministic_and_training_runs():
    method = AMSNet(create_net("unet", preset="small")).cuda()
    noisy = torch.rand(2, 3, 40, 40, device="cuda")
    a = method.denoise(noisy, generator=torch.Generator("cuda").manual_seed(1), refine=True)
    b = method.denoise(noisy, generator=torch.Generator("cuda").manual_seed(1), refine=True)
    assert torch.equal(a, b)
    loss = method.training_loss(noisy, generator=torch.Generator("cuda").manual_seed(0)).loss
    loss.backward()
    assert all(p.grad is not None for p in method.parameters())


def test_weights_load_onto_the_gpu(tmp_path):
    path = save_pretrained(AMSNet(create_net("dncnn", preset="small")), tmp_path / "m.safetensors")
    method = load_pretrained(path, device=resolve_device("auto"))
    assert next(method.parameters()).is_cuda


@pytest.mark.parametrize("precision", ["bf16", "fp16", "fp32"])
def test_training_on_cuda_with_mixed_precision(tmp_path, precision):
    from pathlib import Path

    from amsnet.config import load_config
    from amsnet.training import Trainer

    config = load_config(
        Path(__file__).resolve().parents[2] / "configs" / "cpu" / "amsnet.yaml",
        [
            f"train.precision={precision}",
            "train.steps=30",
            "train.val_every=30",
            "train.device=cuda",
        ],
    )
    result = Trainer(config, run_dir=tmp_path / precision, quiet=True).fit()
    assert result.step == 30 and result.skipped_steps == 0
    assert result.best_psnr is not None and 15 < result.best_psnr < 40
    assert (
        load_pretrained(result.last_path, device="cuda")
        .denoise(torch.rand(1, 3, 32, 32, device="cuda"))
        .isfinite()
        .all()
    )
