"""The promises of docs/guarantees.md, one class at a time (the issue's examples included).

Nothing is overwritten without --overwrite and never an input; collisions are refused before
work; one run per folder; --resume re-applies the run's overrides; options and formats are
checked before work; files and weights give messages, not tracebacks; the API checks value
ranges and PIL modes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import amsnet
from amsnet.cli import main
from amsnet.errors import CheckpointError, ConfigError, ShapeError
from amsnet.zoo import DEFAULT_MODEL, model_path


def picture(height: int = 40, width: int = 48, seed: int = 0) -> np.ndarray:
    return (np.random.default_rng(seed).random((height, width, 3)) * 255).astype(np.uint8)


def save(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)
    return path


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def png_bomb(path: Path, side: int = 20000) -> Path:
    """A PNG whose header claims side x side pixels (past Pillow's decompression-bomb limit)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        return (
            struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
        )

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    body = chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(b"\0" * 64)) + chunk(b"IEND", b"")
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + body)
    return path


def crafted_weights(path: Path, **net: object) -> Path:
    """The shipped student with its header's net section changed."""
    from safetensors import safe_open
    from safetensors.torch import save_file

    from amsnet.checkpoint import read_tensors

    source = model_path(DEFAULT_MODEL)
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    config = json.loads(metadata["amsnet.config"])
    config["net"].update(net)
    save_file(read_tensors(source), str(path), {**metadata, "amsnet.config": json.dumps(config)})
    return path


# ----- every written file goes through one guard


def _official_checkpoint(folder: Path) -> Path:
    from tests.unit.test_compat_official import lightning, official_state

    path = folder / "official.ckpt"
    torch.save(lightning(official_state("dncnn")), path)
    return path


WRITERS = {
    # name: (argv given the folder and the file it must not replace, the flag named)
    "denoise --save-weights": lambda d, f: [
        "denoise",
        str(d / "img.png"),
        "-o",
        str(d / "out"),
        "--adapt",
        "1",
        "--save-weights",
        str(f),
    ],
    "convert -o": lambda d, f: ["convert", str(d / "official.ckpt"), "-o", str(f)],
    "submit sidd-bench -o": lambda d, f: [
        "submit",
        "sidd-bench",
        str(model_path(DEFAULT_MODEL)),
        "--root",
        str(d / "sidd"),
        "-o",
        str(f),
    ],
    "bench chart -o": lambda d, f: ["bench", "chart", str(d / "results.csv"), "-o", str(f)],
    "bench chart --png": lambda d, f: [
        "bench",
        "chart",
        str(d / "results.csv"),
        "-o",
        str(d / "c.svg"),
        "--png",
        str(f),
    ],
    "bench cost --json": lambda d, f: ["bench", "cost", "--nets", "dncnn", "--json", str(f)],
    "bench speed --markdown": lambda d, f: [
        "bench",
        "speed",
        "--nets",
        "dncnn",
        "--markdown",
        str(f),
    ],
    "distill -o": lambda d, f: [
        "distill",
        "amsnet-nafnet-p",
        "--data",
        str(d),
        "-o",
        str(f),
        "--out",
        str(d / "run"),
    ],
}


@pytest.fixture
def workspace(tmp_path):
    save(tmp_path / "img.png", picture())
    (tmp_path / "results.csv").write_text("label,psnr,seconds_per_image\nours,36.5,0.4\n")
    (tmp_path / "sidd").mkdir()
    (tmp_path / "sidd" / "BenchmarkNoisyBlocksSrgb.mat").write_bytes(b"stand-in")
    return tmp_path


@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_no_command_replaces_an_existing_file_without_overwrite(writer, workspace, capsys):
    if writer == "convert -o":
        _official_checkpoint(workspace)
    existing = workspace / "existing.bin"
    existing.write_bytes(b"keep me")
    assert main(WRITERS[writer](workspace, existing)) == 1
    assert existing.read_bytes() == b"keep me"
    error = capsys.readouterr().err
    assert "--overwrite" in error and "existing.bin" in error and "Traceback" not in error


@pytest.mark.parametrize(
    ("argv", "protected"),
    [
        (
            [
                "denoise",
                "{d}/img.png",
                "-o",
                "{d}/o",
                "--zero-shot",
                "--fit-steps",
                "1",
                "--save-weights",
                "{d}/img.png",
                "--overwrite",
            ],
            "img.png",
        ),
        (
            [
                "submit",
                "sidd-bench",
                "{model}",
                "--root",
                "{d}/sidd",
                "-o",
                "{d}/sidd/BenchmarkNoisyBlocksSrgb.mat",
                "--overwrite",
            ],
            "sidd/BenchmarkNoisyBlocksSrgb.mat",
        ),
        (
            ["bench", "chart", "{d}/results.csv", "-o", "{d}/results.csv", "--overwrite"],
            "results.csv",
        ),
    ],
    ids=["denoise --save-weights", "submit sidd-bench -o", "bench chart -o"],
)
def test_an_output_is_never_an_input_even_with_overwrite(argv, protected, workspace, capsys):
    values = {"d": str(workspace), "model": str(model_path(DEFAULT_MODEL))}
    before = digest(workspace / protected)
    assert main([item.format(**values) for item in argv]) == 1
    assert digest(workspace / protected) == before
    assert "one of the inputs" in capsys.readouterr().err


def test_results_folders_are_guarded_and_make_demo_passes_overwrite(workspace, capsys):
    earlier = workspace / "report" / "results.csv"
    earlier.parent.mkdir()
    earlier.write_text("earlier\n")
    argv = ["eval", str(model_path(DEFAULT_MODEL)), "--dataset", "cc", "--root", str(workspace)]
    assert main([*argv, "--out", str(earlier.parent)]) == 1
    assert "--overwrite" in capsys.readouterr().err and earlier.read_text() == "earlier\n"
    demo = workspace / "demo"
    demo.mkdir()
    (demo / "report.html").write_text("earlier demo")
    assert main(["demo", "--output", str(demo)]) == 1
    assert "--overwrite" in capsys.readouterr().err
    assert (demo / "report.html").read_text() == "earlier demo"
    makefile = Path(__file__).resolve().parents[2] / "Makefile"
    assert "demo --output demo_output --overwrite" in makefile.read_text()


def test_a_full_disk_names_the_file_asked_for(tmp_path, monkeypatch):
    import errno
    import os as os_module

    from amsnet.atomic import atomic_write
    from amsnet.cli import describe_os_error

    target = tmp_path / "result.json"
    target.write_text("the earlier version")

    def write(tmp: Path) -> None:
        tmp.write_text("half")
        raise OSError(errno.ENOSPC, os_module.strerror(errno.ENOSPC), str(tmp))

    with pytest.raises(OSError) as caught:
        atomic_write(target, write)
    assert caught.value.filename == str(target)
    assert "free some space" in describe_os_error(caught.value)
    assert target.read_text() == "the earlier version"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]  # no temporary file left


# ----- denoise: collisions and its own outputs


def test_two_inputs_for_one_output_are_refused_before_any_work(tmp_path, capsys):
    save(tmp_path / "dupA" / "x.png", picture())
    save(tmp_path / "dupB" / "x.png", picture(seed=1))
    save(tmp_path / "photo.jpg", picture())
    save(tmp_path / "photo.png", picture())
    out = tmp_path / "out"
    assert (
        main(
            ["denoise", str(tmp_path / "dupA/x.png"), str(tmp_path / "dupB/x.png"), "-o", str(out)]
        )
        == 1
    )
    error = capsys.readouterr().err
    assert "same output" in error and "dupA" in error and "dupB" in error
    assert (
        main(
            [
                "denoise",
                str(tmp_path / "photo.jpg"),
                str(tmp_path / "photo.png"),
                "--format",
                "png",
                "-o",
                str(out),
            ]
        )
        == 1
    )
    assert "photo.jpg" in capsys.readouterr().err
    assert not out.exists()


def test_outputs_inside_an_input_folder_are_not_inputs_the_next_time(tmp_path, capsys):
    nest = tmp_path / "nest"
    save(nest / "a.png", picture())
    assert main(["denoise", str(nest), "-o", str(nest / "out")]) == 0
    capsys.readouterr()
    assert main(["denoise", str(nest), "-o", str(nest / "out")]) == 0
    captured = capsys.readouterr()
    assert "left out" in captured.err and "inside the output folder" in captured.err
    assert "1 skipped, 0 failed, 1 left out" in captured.out
    assert not (nest / "out" / "out").exists()


def test_unread_formats_in_a_folder_are_named_and_a_named_gif_fails(tmp_path, capsys):
    folder = tmp_path / "photos"
    save(folder / "a.png", picture())
    frames = [Image.fromarray(picture()), Image.fromarray(picture(seed=1))]
    frames[0].save(folder / "b.gif", save_all=True, append_images=frames[1:])
    assert main(["denoise", str(folder), "-o", str(tmp_path / "out")]) == 0
    captured = capsys.readouterr()
    assert "b.gif" in captured.err and "1 left out" in captured.out
    assert main(["denoise", str(folder / "b.gif"), "-o", str(tmp_path / "out2")]) == 1
    assert "GIF" in capsys.readouterr().err


def test_a_multipage_tiff_says_only_page_one_is_denoised(tmp_path, caplog):
    frames = [Image.fromarray(picture()), Image.fromarray(picture(seed=1))]
    source = tmp_path / "pages.tif"
    frames[0].save(source, save_all=True, append_images=frames[1:])
    with caplog.at_level(logging.WARNING):
        assert main(["denoise", str(source), "-o", str(tmp_path / "out")]) == 0
    assert "has 2 pages; only page 1" in caplog.text
    assert (tmp_path / "out" / "pages.tif").is_file()


# ----- options and output formats before any work


@pytest.mark.parametrize(
    ("options", "flag"),
    [
        (["--zero-shot", "--fit-steps", "-5"], "--fit-steps"),
        (["--zero-shot", "--fit-steps", "0"], "--fit-steps"),
        (["--max-memory", "-1"], "--max-memory"),
        (["--max-memory", "0"], "--max-memory"),
        (["--tile", "32", "--overlap", "-4"], "--overlap"),
        (["--quality", "0"], "--quality"),
        (["--format", "jpg", "--bit-depth", "16"], "--bit-depth 16"),
    ],
)
def test_denoise_options_are_refused_before_work(options, flag, tmp_path, capsys):
    source = save(tmp_path / "img.png", picture())
    assert main(["denoise", str(source), "-o", str(tmp_path / "out"), *options]) == 1
    assert flag in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_alpha_bound_for_jpeg_is_refused_before_a_zero_shot_fit(tmp_path, capsys, monkeypatch):
    import amsnet.cli.denoise as command

    rgba = np.dstack([picture(), picture()[..., :1]])
    source = save(tmp_path / "rgba.png", rgba)
    fitted = []
    monkeypatch.setattr(command, "_zero_shot", lambda *a: fitted.append(a))
    argv = ["denoise", str(source), "-o", str(tmp_path / "out"), "--format", "jpg", "--zero-shot"]
    assert main(argv) == 1
    assert "alpha" in capsys.readouterr().err and not fitted


def test_eval_limit_zero_is_an_error(tmp_path, capsys):
    argv = ["eval", str(model_path(DEFAULT_MODEL)), "--dataset", "cc", "--root", str(tmp_path)]
    assert main([*argv, "--limit", "0"]) == 1
    assert "--limit" in capsys.readouterr().err


# ----- training: one run per folder, resume with the run's overrides, bad folders


def tiny_experiment(root: Path, steps: int = 2) -> Path:
    import yaml

    for index in range(2):
        save(root / "train" / f"n{index}.png", picture(40, 44, index))
    config = {
        "experiment": {"name": "tiny", "seed": 0, "output_dir": str(root / "runs")},
        "method": {"name": "amsnet", "pd_factor_train": 2, "pd_factor_eval": 1},
        "net": {"name": "dncnn", "preset": "small", "depth": 3, "width": 8},
        "data": {
            "train": {
                "kind": "noisy_folder",
                "root": str(root / "train"),
                "crop_size": 16,
                "batch_size": 2,
                "workers": 0,
            },
            "val": None,
        },
        "train": {"steps": steps, "log_every": 1, "checkpoint_every": 1, "device": "cpu"},
    }
    path = root / "tiny.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def test_a_run_folder_is_held_by_one_run(tmp_path):
    from amsnet.training.run_folder import RunFolder

    folder = RunFolder(tmp_path / "run")
    second = RunFolder(folder.path)
    with folder.claim(), pytest.raises(ConfigError, match="in use by pid"), second.claim():
        pass
    with RunFolder(folder.path).claim():  # released at the end of the block
        pass


def test_a_failed_start_leaves_no_run_folder(tmp_path, capsys):
    config = tiny_experiment(tmp_path)
    run = tmp_path / "runs" / "failed"
    assert (
        main(
            [
                "train",
                str(config),
                "--out",
                str(run),
                "--set",
                f"data.train.root={tmp_path / 'nothing'}",
            ]
        )
        == 1
    )
    assert not run.exists()


def test_resume_applies_the_runs_recorded_overrides(tmp_path, capsys):
    from amsnet.checkpoint import load_state
    from amsnet.config import load_config
    from amsnet.training.trainer import Trainer

    config = tiny_experiment(tmp_path, steps=2)
    run = tmp_path / "runs" / "resumed"
    overrides = ["train.steps=5"]
    Trainer(load_config(config, overrides), run_dir=run, overrides=overrides).fit(until=2)
    assert json.loads((run / "overrides.json").read_text()) == overrides
    # The command printed after a SIGTERM: no --set repeated.
    assert main(["train", str(config), "--out", str(run), "--resume", "--quiet"]) == 0
    assert load_state(run / "state.pt")["step"] == 5
    assert "already reached" not in capsys.readouterr().err


def test_train_out_a_file_and_a_bomb_in_the_training_folder(tmp_path, capsys):
    config = tiny_experiment(tmp_path)
    afile = tmp_path / "a_file"
    afile.write_text("data")
    assert main(["train", str(config), "--out", str(afile)]) == 1
    assert "a_file" in capsys.readouterr().err and afile.read_text() == "data"
    png_bomb(tmp_path / "train" / "bomb.png")
    assert main(["train", str(config), "--out", str(tmp_path / "runs" / "bomb")]) == 1
    error = capsys.readouterr().err
    assert "MAX_IMAGE_PIXELS" in error and "Traceback" not in error


# ----- files and weights: messages, never tracebacks, no allocation from a header


@pytest.mark.parametrize("content", [b"", b"\x00garbage" * 50, b"PK\x03\x04truncated"])
def test_convert_of_a_broken_checkpoint_is_a_message(content, tmp_path, capsys):
    source = tmp_path / "broken.ckpt"
    source.write_bytes(content)
    assert main(["convert", str(source), "-o", str(tmp_path / "x.safetensors")]) == 1
    error = capsys.readouterr().err
    assert "broken.ckpt" in error and "Traceback" not in error


@pytest.mark.parametrize(
    ("net", "message"),
    [
        ({"width": 200000}, "outside 0..65536"),
        ({"width": "wide"}, "width must be a int"),
        ({"width": 4096}, "do not fit"),
    ],
)
def test_a_crafted_header_is_refused_before_any_allocation(net, message, tmp_path):
    import resource

    path = crafted_weights(tmp_path / "crafted.safetensors", **net)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with pytest.raises(CheckpointError, match=message):
        amsnet.load(path)
    grown_mib = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before) / 1024
    assert grown_mib < 200  # a NAFNet of width 4096 would need gigabytes


def test_weights_with_nan_say_so(tmp_path):
    from safetensors import safe_open
    from safetensors.torch import save_file

    from amsnet.checkpoint import read_tensors

    source = model_path(DEFAULT_MODEL)
    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    tensors = read_tensors(source)
    first = next(iter(tensors))
    tensors[first] = torch.full_like(tensors[first], float("nan"))
    save_file(tensors, str(tmp_path / "nan.safetensors"), metadata)
    with pytest.raises(CheckpointError, match="the weights contain NaN"):
        amsnet.load(tmp_path / "nan.safetensors")


def test_info_of_a_folder_says_it_is_a_folder(tmp_path, capsys):
    assert main(["info", str(tmp_path)]) == 1
    assert "is a folder" in capsys.readouterr().err


# ----- the API: value ranges, PIL modes, tiny images


@pytest.mark.parametrize(
    ("image", "message"),
    [
        (picture().astype(np.float32), "divide by 255"),
        (np.full((8, 8, 3), np.nan, np.float32), "NaN"),
        (torch.full((3, 8, 8), float("inf")), "NaN or infinite"),
        (np.zeros((0, 4, 3), np.uint8), r"\(0, 4, 3\)"),
    ],
    ids=["0-255 floats", "NaN", "infinity", "empty"],
)
def test_the_api_refuses_values_it_cannot_denoise(image, message):
    with pytest.raises(ShapeError, match=message):
        amsnet.denoise(image)


def test_float_results_are_clipped_and_slightly_out_of_range_inputs_accepted():
    noisy = torch.rand(3, 24, 24, generator=torch.Generator().manual_seed(0)) * 1.6 - 0.3
    out = amsnet.denoise(noisy)
    assert float(out.min()) >= 0 and float(out.max()) <= 1


@pytest.mark.parametrize(
    ("mode", "returned"),
    [("P", "RGB"), ("CMYK", "RGB"), ("YCbCr", "RGB"), ("HSV", "RGB"), ("LA", "LA"), ("1", "L")],
)
def test_pil_modes_are_converted_not_misread(mode, returned):
    source = Image.fromarray(picture()).convert(mode)
    out = amsnet.denoise(source)
    assert out.mode == returned and out.size == source.size
    reference = np.asarray(amsnet.denoise(source.convert(returned)))
    assert np.array_equal(np.asarray(out), reference)


def test_pil_modes_of_unknown_range_are_refused():
    with pytest.raises(ShapeError, match="mode 'F'"):
        amsnet.denoise(Image.new("F", (8, 8)))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: amsnet.fit(picture(), seconds=0), "seconds"),
        (lambda: amsnet.fit(picture(), steps=0), "steps"),
    ],
)
def test_fit_budgets_are_checked(call, message):
    with pytest.raises(ConfigError, match=message):
        call()


def test_a_tiny_image_does_not_shrink_the_fitting_crop_of_the_others():
    from amsnet.api import _fitting_set

    method = amsnet.AMSNet(amsnet.create_net("dncnn", preset="small"), pd_factor_train=2)
    images = [torch.rand(3, 80, 96), torch.rand(3, 2, 2), torch.rand(3, 40, 40)]
    crop, kept = _fitting_set(method, images, 64)
    assert crop == 64 and [tuple(x.shape) for x in kept] == [(3, 80, 96)]
    crop, kept = _fitting_set(method, images[1:], 64)
    assert crop == 40 and len(kept) == 1
    with pytest.raises(ConfigError, match="16 px"):
        _fitting_set(method, [images[1]], 64)


def test_denoise_into_a_file_is_refused_before_work(tmp_path, capsys):
    source = save(tmp_path / "img.png", picture())
    target = tmp_path / "a_file"
    target.write_text("keep")
    assert main(["denoise", str(source), "-o", str(target)]) == 1
    assert "is a file; give a folder" in capsys.readouterr().err
    assert target.read_text() == "keep"
