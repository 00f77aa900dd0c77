"""amsnet.precision: detection, the auto rule, what runs in reduced precision, the fallback."""

from __future__ import annotations

import logging

import pytest
import torch

from amsnet import native
from amsnet import precision as precision_module
from amsnet.config import ExperimentConfig, validate
from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN, Distilled
from amsnet.nets import create_net
from amsnet.precision import (
    backbone_dtype,
    check_precision,
    choose_precision,
    cpu_has_native_bf16,
    resolve_precision,
    run_backbone,
    set_precision,
)
from amsnet.runtime import prepare_for_inference

CPU = torch.device("cpu")


@pytest.fixture
def simulated_cpu(monkeypatch):
    """Pretend to be an x86 CPU with the given flags (``cpu_flags`` is cached per process)."""

    def simulate(*flags: str) -> None:
        monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset(flags))
        monkeypatch.setattr(precision_module.platform, "machine", lambda: "x86_64")

    return simulate


def test_native_bfloat16_is_read_from_the_cpu_flags(simulated_cpu):
    simulated_cpu("avx512f", "avx512bw", "avx512_vnni")
    assert not cpu_has_native_bf16()
    simulated_cpu("avx512f", "avx512_bf16")
    assert cpu_has_native_bf16()
    simulated_cpu("amx_tile", "amx_bf16")
    assert cpu_has_native_bf16()


def test_arm_flags_are_not_trusted(monkeypatch):
    monkeypatch.setattr(precision_module, "cpu_flags", lambda: frozenset({"bf16", "asimd"}))
    monkeypatch.setattr(precision_module.platform, "machine", lambda: "aarch64")
    assert not cpu_has_native_bf16()
    assert resolve_precision("auto", CPU) is None


def test_auto_is_fp32_without_native_bfloat16_and_bf16_with_it(simulated_cpu):
    simulated_cpu("avx2", "avx512f")
    assert resolve_precision("auto", CPU) is None
    simulated_cpu("avx512_bf16")
    assert resolve_precision("auto", CPU) is torch.bfloat16
    assert resolve_precision("auto", CPU, reduced_ok=False) is None
    assert resolve_precision("fp32", CPU) is None
    assert resolve_precision("AUTO", "meta") is None


def test_an_explicit_emulated_precision_is_honoured_with_a_warning(simulated_cpu, caplog):
    simulated_cpu("avx2")
    with caplog.at_level(logging.WARNING, logger="amsnet.precision"):
        assert resolve_precision("bf16", CPU) is torch.bfloat16
        assert resolve_precision("fp16", CPU) is torch.float16
    assert "no native bf16" in caplog.text and "no native fp16" in caplog.text
    simulated_cpu("avx512_bf16")
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="amsnet.precision"):
        resolve_precision("bf16", CPU)
    assert caplog.text == ""


def test_an_unknown_precision_names_the_flag_and_the_choices():
    with pytest.raises(ConfigError, match=r"--precision: unknown precision 'fp64'.*'bf16'"):
        check_precision("fp64")
    with pytest.raises(ConfigError, match="train.precision"):
        resolve_precision("half", CPU, flag="train.precision")


def test_auto_listens_to_the_card_and_to_the_backbone(simulated_cpu, monkeypatch):
    simulated_cpu("amx_bf16")
    wide = AMSNet(create_net("dncnn", preset="small"))
    assert choose_precision(wide, "auto", CPU) is torch.bfloat16
    # A card that measured a quality loss, or no gain on a CPU, keeps auto in fp32.
    assert choose_precision(wide, "auto", CPU, card={"reduced_precision": {}}) is torch.bfloat16
    lossy = {"reduced_precision": {"keeps_quality": False}}
    assert choose_precision(wide, "auto", CPU, card=lossy) is None
    slow = {"reduced_precision": {"keeps_quality": True, "faster_on_cpu": False}}
    assert choose_precision(wide, "auto", CPU, card=slow) is None
    # An older card's text verdict is no verdict.
    assert choose_precision(wide, "auto", CPU, card={"reduced_precision": "not measured"})
    # The narrow layer-norm networks are not faster in bf16 on a CPU, the paper widths are;
    # a narrow NAFNet is when amsnet's bfloat16 layer norm in C is there.
    monkeypatch.setattr(native, "library", lambda: None)
    assert choose_precision(AMSNet(create_net("nafnet", preset="small")), "auto", CPU) is None
    monkeypatch.setattr(native, "library", lambda: object())
    small = AMSNet(create_net("nafnet", preset="small"))
    assert choose_precision(small, "auto", CPU) is torch.bfloat16
    assert choose_precision(small, "auto", CPU, card=slow) is None
    assert not create_net("restormer", preset="small").reduced_precision_pays
    assert create_net(
        "nafnet", width=32, encoder_blocks=(1,), decoder_blocks=(1,), middle_blocks=1
    ).reduced_precision_pays
    # An explicit choice is always honoured.
    narrow = AMSNet(create_net("nafnet", preset="small"))
    assert choose_precision(narrow, "bf16", CPU, card=lossy) is torch.bfloat16


def test_only_the_backbone_runs_in_reduced_precision():
    seen = []

    class Probe(torch.nn.Module):
        size_multiple = 1
        blind_spot = False

        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 3, 3, padding=1)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            out = self.conv(x)
            seen.append((x.dtype, out.dtype))
            return out

    method = set_precision(AMSNet(Probe()), torch.bfloat16)
    noisy = torch.rand(1, 3, 16, 16)
    out = method.denoise(noisy, refine=True)
    assert out.dtype == torch.float32
    # Inputs come in float32 (masks, PD and stitching in float32); the convolution runs in
    # bfloat16 under autocast; R3 calls the backbone again the same way.
    assert seen and all(pair == (torch.float32, torch.bfloat16) for pair in seen)
    assert run_backbone(Probe(), noisy, None).dtype == torch.float32


@pytest.mark.parametrize(
    "build",
    [
        lambda: AMSNet(create_net("dncnn", preset="small")),
        lambda: APBSN(create_net("dbsnl", preset="small", width=8)),
        lambda: Distilled(create_net("unet", preset="small")),
    ],
    ids=["amsnet", "apbsn", "distilled"],
)
def test_bfloat16_output_is_close_to_float32(build):
    torch.manual_seed(0)
    method = build().eval()
    noisy = torch.rand(1, 3, 40, 40)
    reference = method.denoise(noisy)
    set_precision(method, torch.bfloat16)
    reduced = method.denoise(noisy)
    assert reduced.dtype == torch.float32 and reduced.shape == reference.shape
    # bfloat16 keeps 8 bits of mantissa: about 0.4% relative error per operation.
    assert (reduced - reference).abs().max() < 0.05
    assert not torch.equal(reduced, reference)


def test_training_loss_backpropagates_in_float32_weights():
    method = set_precision(AMSNet(create_net("dncnn", preset="small")), torch.bfloat16)
    generator = torch.Generator().manual_seed(0)
    loss = method.training_loss(torch.rand(2, 3, 20, 20), generator=generator).loss
    assert loss.dtype == torch.float32
    loss.backward()
    grads = [p.grad for p in method.parameters()]
    assert all(g is not None and g.dtype == torch.float32 and g.isfinite().all() for g in grads)


def test_prepare_for_inference_sets_keeps_or_replaces_the_precision(simulated_cpu):
    simulated_cpu("avx512_bf16")
    method = prepare_for_inference(AMSNet(create_net("dncnn", preset="small")), CPU)
    assert backbone_dtype(method) is torch.bfloat16
    prepare_for_inference(method, CPU, precision=None)
    assert backbone_dtype(method) is torch.bfloat16
    prepare_for_inference(method, CPU, precision="fp32")
    assert backbone_dtype(method) is None


def test_an_overflowing_reduced_precision_falls_back_to_fp32(caplog):
    from amsnet.inference import denoise_image

    class OverflowsInHalf(torch.nn.Module):
        size_multiple = 1
        blind_spot = False

        def __init__(self) -> None:
            super().__init__()
            self.scale = torch.nn.Parameter(torch.tensor(1.0))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            # 1e5 overflows float16 (max 65504); the matmul runs in float16 under autocast.
            big = torch.matmul(x.flatten(2), torch.full((x.shape[-2] * x.shape[-1], 1), 1e5))
            return x * self.scale + 0 * big.mean(dim=-1, keepdim=True).unsqueeze(-1)

    method = set_precision(AMSNet(OverflowsInHalf()), torch.float16)
    with caplog.at_level(logging.WARNING, logger="amsnet.inference"):
        out = denoise_image(method, torch.rand(3, 8, 8))
    assert out.isfinite().all()
    assert "runs in fp32 from here on" in caplog.text
    assert backbone_dtype(method) is None


def test_the_former_amp_key_is_read_as_precision():
    base = {
        "method": {"name": "amsnet"},
        "net": {"name": "dncnn", "preset": "small"},
        "data": {"train": {"kind": "noisy_folder", "root": "x"}},
    }
    config = validate(ExperimentConfig, {**base, "train": {"steps": 1, "amp": "bf16"}}, "t")
    assert config.train.precision == "bf16"
    config = validate(ExperimentConfig, {**base, "train": {"steps": 1, "amp": False}}, "t")
    assert config.train.precision == "fp32"
    with pytest.raises(ConfigError, match="train.precision only"):
        validate(
            ExperimentConfig,
            {**base, "train": {"steps": 1, "amp": "off", "precision": "fp32"}},
            "t",
        )
    with pytest.raises(ConfigError, match="precision"):
        validate(ExperimentConfig, {**base, "train": {"steps": 1, "precision": "fp64"}}, "t")
