"""The shipped models: files, checksums and cards; the default path of ``amsnet denoise`` and
``amsnet.denoise``; ``--model``, ``--variant E`` and ``--adapt``; ``amsnet models``."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from skimage import data as skimage_data

import amsnet
from amsnet.checkpoint import read_header
from amsnet.cli import main
from amsnet.data.camera_noise import camera_noise
from amsnet.data.io import read_image
from amsnet.errors import CheckpointError
from amsnet.methods import AMSNet, Distilled
from amsnet.metrics import psnr
from amsnet.ops.downscale import box_downscale
from amsnet.training.distillation import distillation_experiment
from amsnet.zoo import DEFAULT_MODEL, file_sha256, list_models, model_path, SHIPPED
from tests.conftest import shared_data

CARD_FIELDS = {"training_data", "terms", "recipe", "steps", "compute", "figures", "parameters"}


@pytest.mark.parametrize("name", sorted(SHIPPED))
def test_every_shipped_model_is_present_with_its_checksum_and_card(name):
    model = SHIPPED[name]
    assert re.fullmatch(r"[0-9a-f]{64}", model.sha256), f"{name}: no recorded sha256"
    assert model.path.is_file(), f"{name}: {model.path} missing"
    assert file_sha256(model.path) == model.sha256
    header = read_header(model_path(name))
    assert set(header["card"]) >= CARD_FIELDS, (
        f"{name}: card lacks {CARD_FIELDS - set(header['card'])}"
    )
    method = amsnet.load(name, device="cpu")
    assert sum(p.numel() for p in method.parameters()) == header["card"]["parameters"]
    assert model.path.stat().st_size < 4e6, "keep shipped weights small"


def test_the_default_is_a_one_pass_student_and_models_lists_it_first(capsys):
    assert isinstance(amsnet.load(DEFAULT_MODEL, device="cpu"), Distilled)
    assert list_models()[0].name == DEFAULT_MODEL
    assert main(["models"]) == 0
    table = capsys.readouterr().out
    assert all(name in table for name in SHIPPED) and "(default)" in table


def test_a_damaged_or_unknown_model_is_refused(tmp_path, monkeypatch):
    with pytest.raises(CheckpointError, match="shipped models: .*student-nafnet"):
        model_path("no-such-model")
    copy = tmp_path / "damaged.safetensors"
    shutil.copy(SHIPPED[DEFAULT_MODEL].path, copy)
    with open(copy, "r+b") as handle:
        handle.seek(-8, 2)
        handle.write(b"\x00" * 8)

    class Damaged(type(SHIPPED[DEFAULT_MODEL])):
        @property
        def path(self):
            return copy

    original = SHIPPED[DEFAULT_MODEL]
    monkeypatch.setitem(
        SHIPPED,
        DEFAULT_MODEL,
        Damaged(**{f: getattr(original, f) for f in original.__dataclass_fields__}),
    )
    with pytest.raises(CheckpointError, match="damaged or was replaced"):
        amsnet.load(DEFAULT_MODEL)


def _camera_noisy_photo():
    clean = torch.from_numpy(skimage_data.astronaut()[96:288, 160:352].copy())
    clean = clean.permute(2, 0, 1).float().div(255)[None]
    noisy, target, _ = camera_noise(clean, seed=0, iso_like_level="medium")
    return noisy, target


@pytest.mark.xfail(
    strict=True,
    reason="known failure (issue 12): on scikit-image photos with synthetic camera noise the "
    "default student still over-smooths (astronaut crop, medium: 32.51 dB from 33.97 noisy; the "
    "previous, full-resolution-only student 30.39), while on real CC15 / PolyU noise it gains "
    "2.0 / 1.7 dB and on CC15 downscaled 2x / 3x 1.2 / 0.7 dB (docs/models.md, 'Resized "
    "photos'). --strength 0.4 puts it above the noisy input on the demo's three photos (+0.45 "
    "dB, docs/models.md, 'Strength'), but nothing chooses the strength from the image yet, so "
    "the default stays 1",
)
def test_the_default_model_raises_psnr_on_synthetic_camera_noise():
    noisy, target = _camera_noisy_photo()
    denoised = amsnet.denoise(noisy[0])
    gain = float(psnr(denoised[None].clamp(0, 1), target) - psnr(noisy, target))
    assert gain > 1.0, f"the default model gained only {gain:.2f} dB"


def test_denoise_works_without_flags_and_refuses_e_for_the_student(tmp_path, capsys):
    noisy, _ = _camera_noisy_photo()
    array = (noisy[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    PILImage.fromarray(array[:64, :80]).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    assert main(["denoise", str(tmp_path / "photo.png"), "-o", str(out)]) == 0
    assert f"model: {DEFAULT_MODEL}" in capsys.readouterr().out
    assert np.asarray(PILImage.open(out / "photo.png")).shape == (64, 80, 3)
    args = ["denoise", str(tmp_path / "photo.png"), "-o", str(tmp_path / "o2")]
    assert main([*args, "--variant", "E"]) == 1
    assert "needs a model with masks" in capsys.readouterr().err
    assert not (tmp_path / "o2").exists()
    teacher = next(m.name for m in list_models() if m.role == "teacher")
    assert main([*args, "--model", teacher, "--variant", "E"]) == 0
    assert (tmp_path / "o2" / "photo.png").is_file()


def test_adapt_fine_tunes_a_copy_and_keeps_the_given_model(tmp_path):
    noisy, _ = _camera_noisy_photo()
    teacher = amsnet.load(next(m.name for m in list_models() if m.role == "teacher"))
    assert isinstance(teacher, AMSNet)
    before = {k: v.clone() for k, v in teacher.state_dict().items()}
    adapted = amsnet.adapt(teacher, noisy[0, :, :96, :96], steps=3)
    assert all(torch.equal(before[k], v) for k, v in teacher.state_dict().items())
    assert any(not torch.equal(before[k], v) for k, v in adapted.state_dict().items())
    student = amsnet.load(DEFAULT_MODEL)
    adapted_student = amsnet.adapt(student, noisy[0, :, :64, :64], steps=2)
    assert isinstance(adapted_student, Distilled)
    with pytest.raises(amsnet.ConfigError, match="at least 1 step"):
        amsnet.adapt(student, noisy[0], steps=0)


def test_a_students_teacher_is_adapted_only_when_asked():
    noisy, _ = _camera_noisy_photo()
    photo = noisy[0, :, :64, :64]
    student = amsnet.load(DEFAULT_MODEL)
    as_it_is = amsnet.adapt(student, photo, steps=2)
    with_teacher = amsnet.adapt(student, photo, steps=2, teacher_steps=2)
    again = amsnet.adapt(student, photo, steps=2)

    def equal(one, other):
        pairs = zip(one.parameters(), other.parameters(), strict=True)
        return all(torch.equal(a, b) for a, b in pairs)

    assert equal(as_it_is, again) and not equal(as_it_is, with_teacher)
    with pytest.raises(amsnet.ConfigError, match="teacher_steps"):
        amsnet.adapt(student, photo, steps=2, teacher_steps=-1)
    teacher = amsnet.load(next(m.name for m in list_models() if m.role == "teacher"))
    with pytest.raises(amsnet.ConfigError, match="has none"):
        amsnet.adapt(teacher, photo, steps=2, teacher_steps=2)


def test_a_students_adaptation_makes_its_targets_with_the_teacher_in_float32(monkeypatch):
    import amsnet.api

    loaded = []
    original = amsnet.api.load_for_inference

    def recording(weights, device="auto", precision="auto"):
        method = original(weights, device, precision)
        loaded.append((str(weights), precision, getattr(method, "backbone_dtype", None)))
        return method

    student = amsnet.load(DEFAULT_MODEL)
    monkeypatch.setattr(amsnet.api, "load_for_inference", recording)
    noisy, _ = _camera_noisy_photo()
    amsnet.adapt(student, noisy[0, :, :64, :64], steps=1)
    assert [(p, dtype) for _, p, dtype in loaded] == [("fp32", None)]  # the teacher only


def test_denoise_cli_checks_options_before_work(tmp_path, capsys):
    image = tmp_path / "x.png"
    PILImage.fromarray(np.zeros((20, 20, 3), np.uint8)).save(image)
    base = ["denoise", str(image), "-o", str(tmp_path / "out")]
    for extra, message in (
        (["--fit-steps", "0", "--zero-shot"], "--fit-steps"),
        (["--adapt", "-5"], "--adapt"),
        (["--adapt-teacher", "-1", "--adapt", "3"], "--adapt-teacher"),
        (["--adapt-teacher", "3"], "add --adapt"),
        (["--quality", "0"], "--quality"),
        (["--max-memory", "-1"], "--max-memory"),
        (["--overlap", "-4"], "--overlap"),
        (["--save-weights", str(image), "--zero-shot"], "--save-weights"),
        (["--save-weights", str(tmp_path / "w.safetensors")], "--save-weights"),
        (["--model", "nope"], "no shipped model named 'nope'"),
    ):
        assert main([*base, *extra]) == 1, extra
        assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_student_of_the_shipped_teacher_starts_from_its_weights(tmp_path):
    teacher = next(m for m in list_models() if m.role == "teacher")
    experiment = distillation_experiment(teacher.name, [tmp_path])
    assert Path(experiment["train"]["init"]).samefile(teacher.path)
    other = distillation_experiment(teacher.name, [tmp_path], net="dncnn", preset="small")
    assert other["train"]["init"] is None


def test_the_default_model_keeps_resized_real_photos_above_their_noisy_input():
    # The first shipped student took the sharper detail of a downscaled photo for noise and
    # fell below the noisy input (CC15 averaged over 3x3 blocks: -3.8 dB); the scale-trained
    # one gains there (docs/models.md, "Resized photos"). Two CC15 photos, 2x and 3x.
    folder = shared_data("cc15")
    for stem in ("d800_iso3200_1", "5dmark3_iso3200_2"):
        noisy = read_image(folder / f"{stem}_real.png").rgb
        clean = read_image(folder / f"{stem}_mean.png").rgb
        for factor in (2, 3):
            small_noisy = box_downscale(noisy, factor, levels=255)[None]
            small_clean = box_downscale(clean, factor, levels=255)[None]
            denoised = amsnet.denoise(small_noisy, device="cpu").clamp(0, 1)
            gain = float(psnr(denoised, small_clean) - psnr(small_noisy, small_clean))
            assert gain > 0.2, f"{stem} downscaled {factor}x: {gain:+.2f} dB"
