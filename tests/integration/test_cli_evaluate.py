"""``amsnet eval`` and ``amsnet submit`` end to end on tiny files in the real formats."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import scipy.io
import torch

from amsnet.checkpoint import save_pretrained
from amsnet.cli import main
from amsnet.data.benchmarks import EvalPair
from amsnet.data.io import write_image
from amsnet.evaluate import evaluate
from amsnet.methods import AMSNet
from amsnet.nets import create_net
from tests.nets_tiny import TINY
from tests.unit.test_data_dnd import make_dnd


@pytest.fixture
def weights(tmp_path):
    return save_pretrained(
        AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"])), tmp_path / "m.safetensors"
    )


def make_cc_folder(folder, count=2, size=(24, 20)):
    g = torch.Generator().manual_seed(0)
    for index in range(count):
        clean = torch.rand(3, *size, generator=g)
        noisy = (clean + 0.05 * torch.randn(clean.shape, generator=g)).clamp(0, 1)
        write_image(folder / f"scene{index}_real.png", noisy)
        write_image(folder / f"scene{index}_mean.png", clean)


def test_eval_writes_per_image_csv_and_summary_json(tmp_path, weights, capsys):
    make_cc_folder(tmp_path / "cc")
    out = tmp_path / "report"
    code = main(
        [
            "eval",
            str(weights),
            "--dataset",
            "cc",
            "--root",
            str(tmp_path / "cc"),
            "--seeds",
            "0",
            "1",
            "--variant",
            "E",
            "--out",
            str(out),
            "--save-outputs",
            "--device",
            "cpu",
        ]
    )
    assert code == 0
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert len(rows) == 4 and {r["seed"] for r in rows} == {"0", "1"}
    report = json.loads((out / "results.json").read_text())
    assert report["variant"] == "E" and report["trained_on_test_images"] is False
    assert report["summary"]["images"] == 2 and report["summary"]["seeds"] == 2
    assert set(report["per_seed"]) == {"0", "1"}
    assert (out / "images" / "scene0_real.png").is_file()
    assert (out / "images" / "scene0_real_compare.png").is_file()
    # auto: bf16 on a CPU with native bfloat16, fp32 elsewhere; the report says which.
    assert report["precision"] in ("fp32", "bf16")
    assert f"| cc | E | {report['precision']} | 2 | 2 |" in capsys.readouterr().out


def test_summary_is_mean_and_std_over_seeds():
    class Shift(torch.nn.Module):
        """Output = input + seed-dependent constant, so seeds give different PSNRs."""

        def method_config(self):
            return {"name": "shift"}

        backbone = torch.nn.Identity()

        def denoise(self, noisy, *, generator, refine):
            return noisy + 0.01 * generator.initial_seed()

    clean = torch.full((3, 16, 16), 0.5)
    pairs = [EvalPair("a", clean, clean), EvalPair("b", clean, clean)]
    report = evaluate(Shift(), pairs, dataset="x", seeds=[1, 2])
    summary = report.summary()
    per_seed = [v["psnr"] for v in report.per_seed().values()]
    assert summary["psnr"] == pytest.approx(np.mean(per_seed))
    assert summary["psnr_std"] == pytest.approx(np.std(per_seed, ddof=1))


def test_the_self_ensemble_is_measured_and_labelled(tmp_path, weights, capsys):
    class Ramp(torch.nn.Module):
        """Output = input + a ramp along the width: the eight transforms average it to 0.5."""

        def method_config(self):
            return {"name": "ramp"}

        backbone = torch.nn.Identity()

        def denoise(self, noisy, *, generator, refine):
            return noisy + torch.linspace(0, 1, noisy.shape[-1])

    clean = torch.rand(3, 16, 24)
    pairs = [EvalPair("a", clean - 0.5, clean)]
    plain = evaluate(Ramp(), pairs, dataset="x")
    eight = evaluate(Ramp(), pairs, dataset="x", ensemble=8)
    assert eight.rows[0].psnr > plain.rows[0].psnr + 20  # the mean ramp cancels the offset
    assert eight.variant_label == "B x8" and "| x | B x8 |" in eight.to_markdown()
    make_cc_folder(tmp_path / "cc")
    args = ["eval", str(weights), "--dataset", "cc", "--root", str(tmp_path / "cc")]
    assert main([*args, "--ensemble", "0"]) == 1
    assert "--ensemble must be a whole number from 1" in capsys.readouterr().err
    assert main([*args, "--ensemble", "4", "--out", str(tmp_path / "r")]) == 0
    assert json.loads((tmp_path / "r" / "results.json").read_text())["ensemble"] == 4


def test_eval_on_awgn_and_sidd_validation(tmp_path, weights):
    clean = tmp_path / "clean"
    write_image(clean / "a.png", torch.rand(3, 16, 16))
    assert (
        main(
            [
                "eval",
                str(weights),
                "--dataset",
                "awgn",
                "--root",
                str(clean),
                "--sigma",
                "10",
                "25",
                "--device",
                "cpu",
                "--out",
                str(tmp_path / "awgn"),
            ]
        )
        == 0
    )
    for sigma in (10, 25):
        saved = json.loads((tmp_path / "awgn" / f"awgn-sigma{sigma}" / "results.json").read_text())
        assert saved["dataset"] == f"awgn-sigma{sigma}"
    assert (
        main(["eval", str(weights), "--dataset", "awgn", "--root", str(clean), "--device", "cpu"])
        == 1
    )
    blocks = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    sidd = tmp_path / "sidd"
    sidd.mkdir()
    scipy.io.savemat(sidd / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": blocks})
    scipy.io.savemat(sidd / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": blocks})
    out = tmp_path / "sidd-report"
    args = [
        "eval",
        str(weights),
        "--dataset",
        "sidd-val",
        "--root",
        str(sidd),
        "--device",
        "cpu",
        "--out",
        str(out),
    ]
    assert main(args) == 1  # the published size is required by default
    assert main([*args, "--no-strict"]) == 0
    assert json.loads((out / "results.json").read_text())["summary"]["images"] == 6


def test_submit_sidd_benchmark(tmp_path, weights):
    blocks = np.random.default_rng(0).integers(0, 256, (2, 3, 16, 16, 3), dtype=np.uint8)
    root = tmp_path / "bench"
    root.mkdir()
    scipy.io.savemat(root / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": blocks})
    out = tmp_path / "SubmitSrgb.mat"
    assert (
        main(
            [
                "submit",
                "sidd-bench",
                str(weights),
                "--root",
                str(root),
                "-o",
                str(out),
                "--no-strict",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    saved = scipy.io.loadmat(out)
    assert saved["DenoisedBlocksSrgb"].shape == (2, 3)
    assert saved["DenoisedBlocksSrgb"][1, 2].shape == (16, 16, 3)
    assert saved["DenoisedBlocksSrgb"][1, 2].dtype == np.uint8
    assert saved["TimeMPSrgb"].item() > 0


def test_submit_dnd(tmp_path, weights):
    boxes = [np.array([[1, 1, 8, 8], [5, 9, 12, 16]])] * 2
    make_dnd(tmp_path / "dnd", boxes)
    out = tmp_path / "dnd-out"
    assert (
        main(
            [
                "submit",
                "dnd",
                str(weights),
                "--root",
                str(tmp_path / "dnd"),
                "-o",
                str(out),
                "--no-strict",
                "--device",
                "cpu",
            ]
        )
        == 0
    )
    assert sorted(p.name for p in out.glob("*.mat")) == [
        "0001_01.mat",
        "0001_02.mat",
        "0002_01.mat",
        "0002_02.mat",
    ]
    bundle = scipy.io.loadmat(out / "bundled" / "0002.mat")
    assert bundle["Idenoised"].size == 2


def test_images_smaller_than_the_ssim_window_get_nan_not_a_crash():
    method = AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"]))
    tiny = torch.rand(3, 8, 8)
    report = evaluate(method, [EvalPair("tiny", tiny, tiny)], dataset="x")
    assert np.isnan(report.rows[0].ssim_matlab) and np.isfinite(report.rows[0].psnr)
