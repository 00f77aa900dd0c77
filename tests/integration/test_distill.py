"""Distillation: teacher regions cached once, a student that moves toward its teacher, the
``amsnet distill`` command and the method contract of :class:`amsnet.Distilled`."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image as PILImage

import amsnet
from amsnet.checkpoint import read_header
from amsnet.cli import main
from amsnet.config import ExperimentConfig, TrainDataConfig, validate
from amsnet.errors import ConfigError
from amsnet.inference import denoise_image
from amsnet.methods import AMSNet, Distilled
from amsnet.nets import create_net
from amsnet.training.distillation import (
    distillation_experiment,
    MARGIN,
    plan_regions,
    pool_selection,
    teacher_regions,
)
from tests.nets_tiny import TINY


def _teacher(path):
    torch.manual_seed(1)
    method = AMSNet(
        create_net("dncnn", preset=None, **TINY["dncnn"]),
        pd_factor_train=2,
        pd_factor_eval=1,
        mask_fill="neighbour_mean",
    )
    amsnet.save_pretrained(method, path)
    return method


@pytest.fixture
def pool(tmp_path):
    rng = np.random.default_rng(0)
    folder = tmp_path / "pool"
    (folder / "sub").mkdir(parents=True)
    for name, (h, w) in {"a.png": (64, 80), "sub/b.png": (72, 64), "tiny.png": (20, 20)}.items():
        smooth = np.linspace(40, 200, w)[None, :, None] * np.ones((h, 1, 3))
        noisy = np.clip(smooth + rng.normal(0, 20, (h, w, 3)), 0, 255).astype(np.uint8)
        PILImage.fromarray(noisy).save(folder / name)
    (folder / "b_mean.png").write_bytes((folder / "a.png").read_bytes())
    return folder


def test_regions_depend_on_the_seed_and_the_index_only():
    sizes = [(100, 300), (400, 50)]
    first = plan_regions(sizes, 20, 64, seed=3)
    assert plan_regions(sizes, 10, 64, seed=3) == first[:10]
    assert plan_regions(sizes, 20, 64, seed=4) != first
    for region in first:
        height, width = sizes[region.image]
        assert region.side == min(64, height, width)
        assert 0 <= region.top <= height - region.side
        assert 0 <= region.left <= width - region.side


def test_pool_selection_joins_folders_under_their_common_parent(tmp_path):
    (tmp_path / "x" / "a").mkdir(parents=True)
    (tmp_path / "x" / "b").mkdir()
    root, include = pool_selection([tmp_path / "x" / "a", tmp_path / "x" / "b"], ["*.png"])
    assert include == ["a/*.png", "b/*.png"]
    assert (tmp_path / "x").samefile(root)
    with pytest.raises(amsnet.AmsnetError, match="--data .* is not a folder"):
        pool_selection([tmp_path / "missing"])


def test_teacher_targets_are_computed_once_and_match_the_teacher(tmp_path, pool, caplog):
    teacher = _teacher(tmp_path / "teacher.safetensors")
    config = TrainDataConfig(
        kind="distillation",
        root=str(pool),
        include=["*.png", "sub/*"],
        teacher=str(tmp_path / "teacher.safetensors"),
        teacher_variant="B",
        teacher_precision="fp32",  # compared with the float32 teacher below
        regions=5,
        region_size=48,
        crop_size=32,
        cache_dir=str(tmp_path / "cache"),
    )
    first = teacher_regions(config, seed=0, device="cpu")
    assert first.computed == 5
    assert "tiny.png" in caplog.text  # smaller than the crops: left out, and said so
    assert not any("tiny" in first.noisy.name(i) for i in range(5))
    again = teacher_regions(config, seed=0, device="cpu")
    assert again.computed == 0 and again.folder == first.folder
    for number in range(5):
        assert np.array_equal(again.targets.image(number), first.targets.image(number))
    # A region's target is the teacher's output for it, seen with MARGIN pixels of context
    # and the region's own seed, to float16 precision.
    usable = [pool / "a.png", pool / "b_mean.png", pool / "sub" / "b.png"]
    sizes = [np.asarray(PILImage.open(p)).shape[:2] for p in usable]
    region = plan_regions(sizes, 5, 48, seed=0)[3]
    array = np.asarray(PILImage.open(usable[region.image]))
    top, left = max(region.top - MARGIN, 0), max(region.left - MARGIN, 0)
    context = array[
        top : region.top + region.side + MARGIN, left : region.left + region.side + MARGIN
    ]
    out = denoise_image(teacher, torch.from_numpy(context.copy()).permute(2, 0, 1) / 255.0, seed=3)
    rows = slice(region.top - top, region.top - top + region.side)
    columns = slice(region.left - left, region.left - left + region.side)
    expected = out[:, rows, columns].clamp(0, 1).permute(1, 2, 0).numpy()
    assert np.array_equal(
        first.noisy.image(3),
        array[region.top : region.top + region.side, region.left : region.left + region.side],
    )
    assert np.abs(first.targets.image(3) - expected).max() < 1e-3
    # Another teacher precision is another cache.
    config.teacher_precision = "bf16"
    assert teacher_regions(config, seed=0, device="cpu").folder != first.folder
    # Another teacher variant is another cache.
    config.teacher_precision = "fp32"
    config.teacher_variant = "E"
    assert teacher_regions(config, seed=0, device="cpu").folder != first.folder


def test_distillation_moves_a_tiny_student_toward_its_teacher(tmp_path, pool):
    teacher = _teacher(tmp_path / "teacher.safetensors")
    out = tmp_path / "student.safetensors"
    settings = dict(
        net="dncnn",
        preset=None,
        regions=6,
        region_size=48,
        crop_size=32,
        batch_size=4,
        lr=3e-3,
        cache_dir=tmp_path / "cache",
        teacher_variant="B",
        init_from_teacher=False,
    )
    overrides = [f"net.{k}={v}" for k, v in TINY["dncnn"].items()]
    amsnet.distill(
        tmp_path / "teacher.safetensors",
        pool,
        tmp_path / "untrained.safetensors",
        run_dir=tmp_path / "run0",
        steps=1,
        overrides=[*overrides, "train.optimizer.lr=1e-9"],
        **settings,
    )
    amsnet.distill(
        tmp_path / "teacher.safetensors",
        pool,
        out,
        run_dir=tmp_path / "run",
        steps=400,
        overrides=overrides,
        **settings,
    )
    image = np.asarray(PILImage.open(pool / "a.png"), dtype=np.float32) / 255
    x = torch.from_numpy(image).permute(2, 0, 1)[None]
    reference = teacher.denoise(x)

    def distance(path):
        return float((amsnet.load(path, device="cpu").denoise(x) - reference).abs().mean())

    assert distance(out) < 0.5 * distance(tmp_path / "untrained.safetensors")
    student = amsnet.load(out, device="cpu")
    assert isinstance(student, Distilled)
    header = read_header(out)
    assert header["card"]["teacher_variant"] == "B" and header["card"]["steps"] == 400
    assert header["card"]["data"]["downscale_factors"] == [1]
    assert header["card"]["data"]["noise_scales"] == [1.0]
    # The cached targets are float32 unless asked otherwise, whatever the student's precision.
    assert header["card"]["data"]["teacher_precision"] == "fp32"
    with pytest.raises(ConfigError, match="exists"):
        amsnet.distill(tmp_path / "teacher.safetensors", pool, out, **settings)


def test_distill_command_refuses_bad_input_before_work(tmp_path, pool, capsys):
    _teacher(tmp_path / "teacher.safetensors")
    student = Distilled(create_net("dncnn", preset=None, **TINY["dncnn"]))
    amsnet.save_pretrained(student, tmp_path / "student.safetensors")
    base = ["distill", "--data", str(pool), "-o", str(tmp_path / "s.safetensors")]
    assert main([*base[:1], str(tmp_path / "student.safetensors"), *base[1:]]) == 1
    assert "a teacher must be an AMSNet or AP-BSN" in capsys.readouterr().err
    teacher = str(tmp_path / "teacher.safetensors")
    assert main(["distill", teacher, "--data", str(pool), "-o", teacher]) == 1
    assert "is one of the inputs" in capsys.readouterr().err
    assert main(["distill", teacher, "--data", str(tmp_path / "nope"), "-o", "x.st"]) == 1
    assert "is not a folder" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["distill", teacher, "--data", str(pool), "-o", "x.st", "--steps", "0"])
    with pytest.raises(SystemExit):
        main(["distill", teacher, "--data", str(pool), "-o", "x.st", "--noise-scale", "1.5"])
    assert "must lie between 0 and 1" in capsys.readouterr().err
    # Crops three times larger than the default regions cannot be cut: refused, nothing made.
    target = tmp_path / "s.safetensors"
    assert (
        main(["distill", teacher, "--data", str(pool), "-o", str(target), "--downscale", "1", "3"])
        == 1
    )
    error = capsys.readouterr().err
    assert "region_size 192" in error and "largest downscale factor 3" in error
    assert not target.exists()


def test_a_student_of_another_network_cannot_start_from_the_teacher(tmp_path, pool):
    _teacher(tmp_path / "teacher.safetensors")
    with pytest.raises(amsnet.AmsnetError, match="cannot start from the teacher's weights"):
        distillation_experiment(
            tmp_path / "teacher.safetensors", [pool], net="unet", init_from_teacher=True
        )


def test_the_noise_scales_and_the_teachers_precision_reach_the_configuration(tmp_path, pool):
    _teacher(tmp_path / "teacher.safetensors")
    experiment = distillation_experiment(
        tmp_path / "teacher.safetensors", [pool], noise_scales=(1, 0.5), precision="bf16"
    )
    data = validate(ExperimentConfig, experiment, "test").data.train
    assert data.noise_scales == [1.0, 0.5]
    assert data.teacher_precision == "fp32"  # not the student's bf16


def test_the_student_has_no_masks_for_r3():
    student = Distilled(create_net("dncnn", preset=None, **TINY["dncnn"]))
    with pytest.raises(ConfigError, match="no masks"):
        student.denoise(torch.rand(1, 3, 16, 16), refine=True)
    with pytest.raises(ConfigError, match="needs the teacher's outputs"):
        student.training_loss(torch.rand(1, 3, 16, 16))
    with pytest.raises(ConfigError, match="variant E"):
        amsnet.denoise(np.zeros((16, 16, 3), np.uint8), student, refine=True)
