"""The embedded demo end to end on two small photos and a tiny budget."""

from __future__ import annotations

import csv
import re

import pytest
import torch

from amsnet.checkpoint import load_pretrained
from amsnet.cli import main
from amsnet.studies.demo import run_demo, STUDENT_LABEL, TEACHER_LABEL

pytest.importorskip("skimage")


@pytest.fixture
def photos():
    from skimage import data

    from amsnet.data.io import from_uint8

    astronaut = from_uint8(data.astronaut())
    return [("face", astronaut[:, 40:104, 180:244]), ("suit", astronaut[:, 300:348, 100:156])]


def test_demo_writes_results_report_and_models(tmp_path, photos):
    lines = []
    rows = run_demo(tmp_path, adapt_steps=2, images=photos, report=lines.append, device="cpu")
    methods = {r.method for r in rows}
    assert {"noisy", TEACHER_LABEL, STUDENT_LABEL, "student + adapt (2 steps)"} <= methods
    assert {r.image for r in rows} == {"face", "suit", "mean"}
    table = list(csv.DictReader((tmp_path / "results.csv").open()))
    assert len(table) == len(rows)
    noisy = next(r for r in rows if r.method == "noisy" and r.image == "mean")
    assert 20 < noisy.psnr < 35  # 'high' camera noise
    page = (tmp_path / "report.html").read_text()
    assert "No-reference quality report" in page
    assert page.count(f"<tr><td>{STUDENT_LABEL}</td><td>face</td>") == 1
    for source in re.findall(r'src="([^"]+)"', page):
        assert (tmp_path / source).is_file(), source
    assert (tmp_path / "images" / "face_amsnet_student_default.png").is_file()
    model = load_pretrained(tmp_path / "weights" / "adapted-student.safetensors")
    assert model.denoise(torch.rand(1, 3, 20, 20)).shape == (1, 3, 20, 20)
    assert any("student adapted" in line for line in lines)


def test_demo_command_rejects_negative_adaptation(tmp_path):
    assert main(["demo", "--adapt-steps", "-1", "--output", str(tmp_path)]) == 1


def test_report_renders_in_headless_chromium_with_every_image(tmp_path, photos):
    import shutil
    import subprocess

    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser is None:
        pytest.skip("headless Chromium is not installed (Debian package 'chromium')")
    run_demo(tmp_path, adapt_steps=1, images=photos, report=lambda line: None, device="cpu")
    command = [
        browser,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--disable-quic",
        "--no-first-run",
        "--disable-background-networking",
        "--disable-component-update",
        "--disable-sync",
        f"--user-data-dir={tmp_path / 'profile'}",
        "--allow-file-access-from-files",
        "--virtual-time-budget=5000",
        "--dump-dom",
        (tmp_path / "report.html").as_uri(),
    ]
    dom = subprocess.run(command, capture_output=True, text=True, timeout=120).stdout
    assert 'data-images="loaded"' in dom, dom[-500:]


def cc15_folder(root, names, photos):
    """A CC15-like folder (``NAME_real.png`` / ``NAME_mean.png``) of small photos."""
    import numpy as np
    from PIL import Image

    folder = root / "cc15"
    folder.mkdir(parents=True)
    generator = torch.Generator().manual_seed(0)
    for name, (_, clean) in zip(names, photos, strict=False):
        noisy = (clean + 0.04 * torch.randn(clean.shape, generator=generator)).clamp(0, 1)
        for suffix, image in (("mean", clean), ("real", noisy)):
            pixels = (image.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
            Image.fromarray(pixels).save(folder / f"{name}_{suffix}.png")
    return root


def test_demo_on_real_noise_pairs_takes_the_cc15_photos(tmp_path, photos):
    from amsnet.studies.demo import DEMO_CC15

    data = cc15_folder(tmp_path / "data", DEMO_CC15[:2], photos)
    lines = []
    rows = run_demo(tmp_path / "out", adapt_steps=0, data=data, report=lines.append, device="cpu")
    assert {r.image for r in rows} == {*DEMO_CC15[:2], "mean"}
    noisy = next(r for r in rows if r.method == "noisy" and r.image == "mean")
    assert 26 < noisy.psnr < 30  # the noise written into the fake CC15 (sigma 0.04: 28 dB)
    assert "real camera noise" in lines[0]
    assert "CC15" in (tmp_path / "out" / "report.html").read_text()


def test_demo_photos_fall_back_to_synthetic_noise_or_refuse_a_missing_cc15(tmp_path, photos):
    from amsnet.errors import ConfigError
    from amsnet.studies.demo import demo_photos

    fallback = demo_photos("auto", data=tmp_path, images=photos)
    assert fallback.names == ["face", "suit"] and "synthetic" in fallback.description
    with pytest.raises(ConfigError, match=r"--photos cc15: no folder .*cc15.*--data"):
        demo_photos("cc15", data=tmp_path)
    with pytest.raises(ConfigError, match="--photos must be one of"):
        demo_photos("kodak", data=tmp_path)
    assert (
        main(["demo", "--photos", "cc15", "--data", str(tmp_path), "--output", str(tmp_path / "o")])
        == 1
    )
