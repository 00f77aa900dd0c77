"""The quality study harness (issue 6) on a tiny synthetic set: files, resume, bad settings."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from amsnet.data.io import write_image
from amsnet.errors import ConfigError, DataError
from amsnet.methods import Supervised
from amsnet.nets import create_net
from amsnet.studies.bench.quality import ALL_METHODS, load_config, run_study
from amsnet.training.fit import fit_images


@pytest.fixture
def clean_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "clean"
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:40, 0:48] / 40.0
    for index in range(3):
        base = np.stack([np.sin(3 * x + index), np.cos(2 * y), x * y], axis=-1) * 0.4 + 0.5
        image = np.clip(base + rng.normal(0, 0.01, base.shape), 0, 1)
        write_image(folder / f"img{index}.png", (image * 255).round().astype(np.uint8))
    return folder


def settings(root: Path, **changes: object) -> dict[str, object]:
    values: dict[str, object] = {
        "dataset": "awgn",
        "root": str(root),
        "sigma": 25,
        "images": 2,
        "seeds": [0, 1],
        "cpu_seconds": 0.4,
        "methods": ["noisy", "amsnet-b", "amsnet-p-e", "supervised", "apbsn-ordinary"],
        "net": "dncnn",
        "preset": "small",
        "crop": 16,
        "finetune_crop": 16,
        "batch_size": 2,
    }
    values.update(changes)
    return values


def test_study_writes_its_reports_and_resumes_without_retraining(
    clean_folder: Path, tmp_path: Path
) -> None:
    out = tmp_path / "study"
    lines: list[str] = []
    summary = run_study(load_config(settings(clean_folder)), out, report=lines.append)

    rows = {r["method"]: r for r in summary["rows"]}
    assert list(rows) == ["noisy", "amsnet-b", "amsnet-p-e", "supervised", "apbsn-ordinary"]
    assert all(r["seeds"] == 2 for r in rows.values())
    # AWGN sigma 25 on 8-bit values: about 20.2 dB, different noise per seed.
    assert 19.5 < rows["noisy"]["psnr"] < 21.0
    assert rows["noisy"]["psnr_std"] > 0
    assert rows["amsnet-p-e"]["train_steps"] > 0
    for name in ("results.csv", "summary.csv", "summary.json", "summary.md", "comparison.png"):
        assert (out / name).stat().st_size > 0
    table = (out / "summary.md").read_text()
    assert "| AMSNet-P-E |" in table and "AWGN sigma 25" in table
    assert len((out / "results.csv").read_text().splitlines()) == 1 + 5 * 2 * 2
    trained = sum("trained" in line for line in lines)
    assert trained == 2 * 4  # four models per seed

    # A second run finds every result and trains nothing.
    again: list[str] = []
    repeat = run_study(load_config(settings(clean_folder)), out, report=again.append)
    assert not any("trained" in line for line in again)
    assert repeat["rows"] == summary["rows"]

    # A lost result is recomputed from the saved model, without training.
    (out / "runs" / "seed1" / "amsnet-p-e.json").unlink()
    third: list[str] = []
    run_study(load_config(settings(clean_folder)), out, report=third.append)
    assert any("amsnet-p loaded" in line for line in third)
    assert not any("trained" in line for line in third)

    # So is a row whose name is also its model's (amsnet-b, supervised).
    (out / "runs" / "seed0" / "amsnet-b.json").unlink()
    fourth: list[str] = []
    final = run_study(load_config(settings(clean_folder)), out, report=fourth.append)
    assert any("amsnet-b loaded" in line for line in fourth)
    assert not any("trained" in line for line in fourth)
    assert [r["train_steps"] for r in final["rows"]] == [r["train_steps"] for r in summary["rows"]]
    # The comparison sheet shows up to three images (here both) of every method.
    assert sorted(p.name for p in (out / "runs" / "seed0").glob("amsnet-b_img*.png")) == [
        "amsnet-b_img0.png",
        "amsnet-b_img1.png",
    ]


def test_study_refuses_a_folder_of_other_settings(clean_folder: Path, tmp_path: Path) -> None:
    out = tmp_path / "study"
    run_study(load_config(settings(clean_folder, methods=["noisy"], seeds=[0])), out)
    with pytest.raises(ConfigError, match="other settings"):
        run_study(load_config(settings(clean_folder, methods=["noisy"], sigma=50)), out)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"methods": ["noisy", "amsnet-q"]}, "unknown methods"),
        ({"cpu_secnds": 3}, "cpu_secnds"),
        ({"seeds": []}, "seeds"),
        ({"dataset": "sidd"}, "dataset"),
    ],
)
def test_bad_settings_are_errors(
    clean_folder: Path, tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        run_study(load_config(settings(clean_folder, **changes)), tmp_path / "out")


def test_empty_dataset_folder_is_an_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        run_study(load_config(settings(tmp_path / "empty", methods=["noisy"])), tmp_path / "o")


def test_every_method_has_a_label_and_a_model_or_classical_rule() -> None:
    from amsnet.studies.bench.quality import LABELS, MODELS

    produced = {row for rows in MODELS.values() for row in rows}
    assert set(LABELS) == set(ALL_METHODS)
    assert produced | {"noisy", "bm3d-oracle", "bm3d-estimated"} == set(ALL_METHODS)


def test_supervised_fit_uses_aligned_targets() -> None:
    # Targets are cropped at the same place as the noisy images: with clean == noisy the
    # supervised loss is the identity's, which a residual DnCNN starts close to.
    torch.manual_seed(0)
    images = [torch.rand(3, 32, 32)]
    method = Supervised(create_net("dncnn", preset="small"))
    result = fit_images(method, images, crop=16, batch_size=2, steps=3, targets=images)
    assert result.steps == 3
    with pytest.raises(ConfigError, match="targets"):
        fit_images(method, images, crop=16, batch_size=2, steps=1, targets=[torch.rand(3, 8, 8)])
