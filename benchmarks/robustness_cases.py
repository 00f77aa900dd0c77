"""Try careless-user cases against the amsnet command line and the API; count the handled ones.

A case is *handled* when the command ends within its time limit, with the expected exit code,
without a Python traceback, with a message holding the expected words, and without touching
the files it must leave alone (inputs keep their bytes, refused outputs do not appear).

    python benchmarks/robustness_cases.py                 # every case, a table of failures
    python benchmarks/robustness_cases.py --group denoise --verbose
    python benchmarks/robustness_cases.py --json robustness.json

Each case runs ``python -m amsnet ...`` in a fresh process (about 2 s each for the imports),
so the whole list takes a few minutes on 2 cores. Cases that cannot be staged here (a
read-only folder while running as root) are reported as not tried, never as handled.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import pickle
import shutil
import signal
import struct
import subprocess
import sys
import tempfile
import textwrap
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml
from PIL import Image

ANY_FAILURE = -1  # expected exit code: any non-zero one


@dataclass
class Case:
    """One command and what handling it well means."""

    name: str
    group: str
    argv: list[str]
    code: int = 1
    says: tuple[str, ...] = ()
    untouched: tuple[str, ...] = ()
    absent: tuple[str, ...] = ()
    present: tuple[str, ...] = ()
    timeout: float = 120.0
    before: Callable[[Path], None] | None = None
    check: Callable[[Path, str], str | None] | None = None  # extra check: None or a complaint
    python: str | None = None  # run this Python code instead of the CLI
    tried: bool = True
    why_not: str = ""


@dataclass
class Outcome:
    case: Case
    handled: bool
    complaint: str = ""
    seconds: float = 0.0
    output: str = field(default="", repr=False)


# ----- the files the cases work on


def _png_bomb(path: Path, side: int = 20000) -> None:
    """A valid-looking PNG whose header claims side x side pixels (a decompression bomb)."""

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    header = struct.pack(">IIBBBBB", side, side, 8, 2, 0, 0, 0)
    data = zlib.compress(b"\0" * 64)
    path.write_bytes(
        b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")
    )


class _Payload:
    """Unpickling this runs a command: what a malicious checkpoint does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _weights_variants(folder: Path) -> None:
    """The shipped student and crafted copies of it."""
    import torch
    from safetensors.torch import save_file

    from amsnet.checkpoint import read_tensors
    from amsnet.zoo import DEFAULT_MODEL, model_path

    source = model_path(DEFAULT_MODEL)
    shutil.copy(source, folder / "good.safetensors")
    from safetensors import safe_open

    with safe_open(str(source), framework="pt") as handle:
        metadata = dict(handle.metadata())
    tensors = read_tensors(source)

    def variant(name: str, change: Callable[[dict], None], nan: bool = False) -> None:
        config = json.loads(metadata["amsnet.config"])
        change(config)
        header = {**metadata, "amsnet.config": json.dumps(config)}
        values = dict(tensors)
        if nan:
            key = next(iter(values))
            values[key] = torch.full_like(values[key], float("nan"))
        save_file(values, str(folder / name), metadata=header)

    variant("huge-width.safetensors", lambda c: c["net"].__setitem__("width", 200000))
    variant("wide.safetensors", lambda c: c["net"].__setitem__("width", 60000))
    variant("string-width.safetensors", lambda c: c["net"].__setitem__("width", "wide"))
    variant("nan.safetensors", lambda c: None, nan=True)
    variant("typo.safetensors", lambda c: c["net"].__setitem__("widht", 32))
    (folder / "empty.safetensors").write_bytes(b"")
    (folder / "random.safetensors").write_bytes(os.urandom(4096))
    (folder / "truncated.safetensors").write_bytes(source.read_bytes()[:5000])
    (folder / "empty.ckpt").write_bytes(b"")
    (folder / "random.ckpt").write_bytes(os.urandom(4096))
    with open(folder / "evil.ckpt", "wb") as handle:
        pickle.dump({"state_dict": _Payload(folder / "PWNED")}, handle)
    torch.save({"state_dict": {"x": torch.zeros(2)}}, folder / "tiny.ckpt")
    truncated = (folder / "tiny.ckpt").read_bytes()
    (folder / "truncated.ckpt").write_bytes(truncated[: len(truncated) // 2])


def make_files(root: Path) -> None:
    rng = np.random.default_rng(0)
    picture = (rng.random((72, 80, 3)) * 255).astype(np.uint8)
    img = root / "img"
    img.mkdir()
    Image.fromarray(picture).save(img / "img.png")
    Image.fromarray(picture).save(img / "photo.jpg")
    Image.fromarray(picture).save(img / "photo.png")
    Image.fromarray(np.dstack([picture, picture[..., :1]])).save(img / "rgba.png")
    Image.fromarray(picture[:2, :2]).save(img / "tiny.png")
    Image.fromarray(picture).convert("P").save(img / "palette.png")
    Image.fromarray(picture).convert("CMYK").save(img / "cmyk.jpg")
    Image.fromarray(picture[..., 0]).save(img / "gray.png")
    wide = (picture.astype(np.uint16) * 257)[..., 0]
    Image.fromarray(wide).save(img / "gray16.png")
    frames = [Image.fromarray(picture), Image.fromarray(255 - picture)]
    frames[0].save(img / "pages.tif", save_all=True, append_images=frames[1:])
    frames[0].save(img / "anim.gif", save_all=True, append_images=frames[1:])
    (img / "zero.png").write_bytes(b"")
    data = (img / "img.png").read_bytes()
    (img / "truncated.png").write_bytes(data[: len(data) // 2])
    (img / "noise.png").write_bytes(os.urandom(3000))
    (img / "text.jpg").write_text("not a photo\n")
    _png_bomb(img / "bomb.png")
    for name in ("dupA", "dupB", "nest", "gifs"):
        (root / name).mkdir()
    Image.fromarray(picture).save(root / "dupA" / "x.png")
    Image.fromarray(picture).save(root / "dupB" / "x.png")
    Image.fromarray(picture).save(root / "nest" / "a.png")
    Image.fromarray(picture).save(root / "gifs" / "a.png")
    shutil.copy(img / "anim.gif", root / "gifs" / "b.gif")
    (root / "a_file").write_text("I am a file\n")
    weights = root / "weights"
    weights.mkdir()
    _weights_variants(weights)
    # Training: a tiny folder of noisy images, a tiny config, a bomb among them in another.
    for folder in ("train", "train_bomb"):
        (root / folder).mkdir()
        for index in range(3):
            noisy = (rng.random((48, 52, 3)) * 255).astype(np.uint8)
            Image.fromarray(noisy).save(root / folder / f"n{index}.png")
    _png_bomb(root / "train_bomb" / "bomb.png")
    config = {
        "experiment": {"name": "tiny", "seed": 0, "output_dir": str(root / "runs")},
        "method": {"name": "amsnet", "pd_factor_train": 2, "pd_factor_eval": 1},
        "net": {"name": "dncnn", "preset": "small", "depth": 3, "width": 8},
        "data": {
            "train": {
                "kind": "noisy_folder",
                "root": str(root / "train"),
                "crop_size": 24,
                "batch_size": 2,
                "workers": 0,
            },
            "val": None,
        },
        "train": {
            "steps": 4,
            "log_every": 1,
            "val_every": 1000,
            "checkpoint_every": 2,
            "optimizer": {"lr": 1e-3},
            "device": "cpu",
        },
    }
    (root / "tiny.yaml").write_text(yaml.safe_dump(config))
    bomb = json.loads(json.dumps(config))
    bomb["data"]["train"]["root"] = str(root / "train_bomb")
    (root / "bomb.yaml").write_text(yaml.safe_dump(bomb))
    typo = json.loads(json.dumps(config))
    typo["train"]["stpes"] = 3
    (root / "typo.yaml").write_text(yaml.safe_dump(typo))
    (root / "sidd").mkdir()
    (root / "sidd" / "BenchmarkNoisyBlocksSrgb.mat").write_bytes(b"MATLAB 5.0 stand-in")
    (root / "results.csv").write_text("label,psnr,seconds_per_image\nours,36.5,0.4\n")
    (root / "existing.json").write_text("{}\n")
    (root / "evalout").mkdir()
    (root / "evalout" / "results.csv").write_text("earlier results\n")
    (root / "demo_output").mkdir()
    (root / "demo_output" / "report.html").write_text("<p>an earlier demo</p>\n")


# ----- the cases


def _exists(relative: str) -> Callable[[Path, str], str | None]:
    def check(root: Path, _: str) -> str | None:
        return None if (root / relative).exists() else f"{relative} was not written"

    return check


def _run_twice_into_nest(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "amsnet", "denoise", "nest", "-o", "nest/out", "--quiet"],
        cwd=root,
        capture_output=True,
        timeout=120,
    )


def _interrupted_run_with_override(root: Path) -> None:
    """A run of train.steps=300 (an override; the file says 4) stopped by SIGTERM early."""
    run = root / "runs" / "sigterm"
    command = [sys.executable, "-m", "amsnet", "train", "tiny.yaml", "--out", str(run)]
    command += ["--set", "train.steps=300", "train.checkpoint_every=1", "--quiet"]
    process = subprocess.Popen(command, cwd=root, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 90
    while not (run / "state.pt").exists() and process.poll() is None:
        if time.monotonic() > deadline:
            break
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    process.communicate(timeout=60)


def _resumed_to_override(root: Path, output: str) -> str | None:
    import torch

    state = torch.load(root / "runs" / "sigterm" / "state.pt", weights_only=True)
    if "already reached" in output:
        return "the resume forgot the run's --set overrides"
    return None if state["step"] == 300 else f"the resumed run ended at step {state['step']}"


def _busy_run_folder(root: Path) -> None:
    run = root / "runs" / "busy"
    command = [sys.executable, "-m", "amsnet", "train", "tiny.yaml", "--out", str(run)]
    command += ["--set", "train.steps=1000000", "--quiet"]
    process = subprocess.Popen(command, cwd=root, stderr=subprocess.DEVNULL)
    (root / "busy.pid").write_text(str(process.pid))
    deadline = time.monotonic() + 90
    while not (run / "log.csv").exists() and time.monotonic() < deadline:
        time.sleep(0.2)


def _stop_busy(root: Path, _: str) -> str | None:
    pid = int((root / "busy.pid").read_text())
    os.kill(pid, signal.SIGKILL)
    return None


def _finished_run(root: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "amsnet", "train", "tiny.yaml", "--out", "runs/done", "--quiet"],
        cwd=root,
        capture_output=True,
        timeout=300,
    )


def _corrupt_state(root: Path) -> None:
    _finished_run(root)
    (root / "runs" / "done" / "state.pt").write_bytes(b"garbage")


def _api(code: str) -> str:
    return textwrap.dedent(
        """
        import numpy as np, torch, amsnet
        from PIL import Image
        from amsnet.errors import AmsnetError
        picture = (np.random.default_rng(0).random((40, 48, 3)) * 255).astype(np.uint8)
        def refused(call):
            try:
                call()
            except AmsnetError as error:
                print("refused:", error)
                raise SystemExit(1)
            print("accepted")
        """
    ) + textwrap.dedent(code)


def cases(root: Path) -> list[Case]:
    d = ["denoise"]
    w = "weights/"
    as_root = hasattr(os, "geteuid") and os.geteuid() == 0
    out: list[Case] = [
        # denoise: outputs
        Case(
            "default model", "denoise", [*d, "img/img.png", "-o", "o1"], 0, present=("o1/img.png",)
        ),
        Case(
            "second run skips existing",
            "denoise",
            [*d, "img/img.png", "-o", "o1"],
            0,
            says=("skipped",),
            before=lambda r: _run_cli(r, [*d, "img/img.png", "-o", "o1"]),
        ),
        Case(
            "--save-weights onto the input photo",
            "denoise",
            [
                *d,
                "img/img.png",
                "-o",
                "o2",
                "--zero-shot",
                "--fit-steps",
                "2",
                "--save-weights",
                "img/img.png",
                "--overwrite",
            ],
            says=("one of the inputs",),
            untouched=("img/img.png",),
        ),
        Case(
            "--save-weights onto an existing file",
            "denoise",
            [*d, "img/img.png", "-o", "o3", "--adapt", "1", "--save-weights", "existing.json"],
            says=("exists", "--overwrite"),
            untouched=("existing.json",),
        ),
        Case(
            "--save-weights without a fit",
            "denoise",
            [*d, "img/img.png", "-o", "o4", "--save-weights", "new.safetensors"],
            says=("--save-weights",),
            absent=("o4/img.png",),
        ),
        Case(
            "two inputs, one output name",
            "denoise",
            [*d, "dupA/x.png", "dupB/x.png", "-o", "o5"],
            says=("same output",),
            absent=("o5/x.png",),
        ),
        Case(
            "photo.jpg and photo.png with --format png",
            "denoise",
            [*d, "img/photo.jpg", "img/photo.png", "--format", "png", "-o", "o6"],
            says=("same output",),
            absent=("o6/photo.png",),
        ),
        Case(
            "output folder inside the input folder, twice",
            "denoise",
            [*d, "nest", "-o", "nest/out"],
            0,
            says=("left out",),
            before=_run_twice_into_nest,
            absent=("nest/out/out",),
        ),
        Case(
            "-o is a file",
            "denoise",
            [*d, "img/img.png", "-o", "a_file"],
            says=("a_file",),
            untouched=("a_file",),
        ),
        # denoise: options
        Case(
            "--fit-steps -5",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--zero-shot", "--fit-steps", "-5"],
            says=("--fit-steps",),
            timeout=30,
        ),
        Case(
            "--fit-steps 0",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--zero-shot", "--fit-steps", "0"],
            says=("--fit-steps",),
            timeout=30,
        ),
        Case(
            "--max-memory -1",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--max-memory", "-1"],
            says=("--max-memory",),
        ),
        Case(
            "--max-memory 0",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--max-memory", "0"],
            says=("--max-memory",),
        ),
        Case(
            "--overlap -4",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--tile", "32", "--overlap", "-4"],
            says=("--overlap",),
        ),
        Case(
            "--tile below --overlap",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--tile", "16", "--overlap", "32"],
            says=("--tile",),
        ),
        Case(
            "--tile abc",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--tile", "abc"],
            says=("--tile",),
        ),
        Case(
            "--quality 0",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--quality", "0"],
            says=("--quality",),
            absent=("o7/img.png",),
        ),
        Case(
            "--quality 101",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--quality", "101"],
            says=("--quality",),
        ),
        Case(
            "--ensemble 9",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--ensemble", "9"],
            says=("--ensemble", "from 1", "to 8"),
            absent=("o7/img.png",),
        ),
        Case(
            "RGBA input to --format jpg",
            "denoise",
            [*d, "img/rgba.png", "-o", "o7", "--format", "jpg", "--zero-shot"],
            says=("alpha", "--format png"),
            absent=("o7/rgba.jpg",),
            timeout=30,
        ),
        Case(
            "--bit-depth 16 to JPEG",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--format", "jpg", "--bit-depth", "16"],
            says=("--bit-depth 16",),
            absent=("o7/img.jpg",),
        ),
        Case(
            "--adapt -1",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--adapt", "-1"],
            says=("--adapt",),
        ),
        Case(
            "--adapt with --zero-shot",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--adapt", "2", "--zero-shot"],
            says=("--adapt",),
        ),
        Case(
            "--variant E on the one-pass student",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--variant", "E"],
            says=("R3",),
        ),
        Case(
            "--variant X",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--variant", "X"],
            2,
            says=("--variant",),
        ),
        Case(
            "--model unknown",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--model", "nosuch"],
            says=("nosuch", "student-nafnet"),
        ),
        Case(
            "--model and --weights",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--model", "x", "--weights", "y"],
            2,
            says=("not allowed",),
        ),
        Case(
            "--device bogus",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--device", "bogus"],
            says=("bogus",),
        ),
        Case(
            "--device cuda without a GPU",
            "denoise",
            [*d, "img/img.png", "-o", "o7", "--device", "cuda"],
            says=("cuda",),
        ),
        # denoise: weights files
        Case(
            "--weights missing",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", "nope.safetensors"],
            says=("does not exist",),
        ),
        Case(
            "--weights empty file",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "empty.safetensors"],
            says=("empty.safetensors",),
        ),
        Case(
            "--weights random bytes",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "random.safetensors"],
            says=("random.safetensors",),
        ),
        Case(
            "--weights truncated",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "truncated.safetensors"],
            says=("truncated.safetensors",),
        ),
        Case(
            "--weights header width 200000",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "huge-width.safetensors"],
            says=("width",),
            timeout=30,
        ),
        Case(
            "--weights header width 60000 (fits the bound)",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "wide.safetensors"],
            says=("do not fit",),
            timeout=30,
        ),
        Case(
            "--weights header with a string width",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "string-width.safetensors"],
            says=("width",),
        ),
        Case(
            "--weights header with an unknown key",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "typo.safetensors"],
            says=("widht",),
        ),
        Case(
            "--weights with NaN",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "nan.safetensors"],
            says=("weights contain NaN",),
            absent=("o8/img.png",),
        ),
        Case(
            "--weights an official .ckpt",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", w + "tiny.ckpt"],
            says=("amsnet convert",),
        ),
        Case(
            "--weights a photo",
            "weights",
            [*d, "img/img.png", "-o", "o8", "--weights", "img/img.png"],
            says=("img.png",),
        ),
        # denoise: images
        Case(
            "a corrupt image among good ones",
            "images",
            [*d, "img/img.png", "img/truncated.png", "-o", "o9"],
            says=("truncated.png",),
            present=("o9/img.png",),
        ),
        Case("an empty image file", "images", [*d, "img/zero.png", "-o", "o9"], says=("empty",)),
        Case(
            "random bytes named .png",
            "images",
            [*d, "img/noise.png", "-o", "o9"],
            says=("noise.png",),
        ),
        Case(
            "a text file named .jpg", "images", [*d, "img/text.jpg", "-o", "o9"], says=("text.jpg",)
        ),
        Case(
            "a decompression bomb",
            "images",
            [*d, "img/bomb.png", "-o", "o9"],
            says=("MAX_IMAGE_PIXELS",),
            timeout=30,
        ),
        Case(
            "an animated GIF named", "images", [*d, "img/anim.gif", "-o", "o9"], says=("GIF", "PNG")
        ),
        Case(
            "a GIF inside a folder",
            "images",
            [*d, "gifs", "-o", "o10"],
            0,
            says=("left out", "b.gif"),
        ),
        Case(
            "a multi-page TIFF",
            "images",
            [*d, "img/pages.tif", "-o", "o9"],
            0,
            says=("2 pages",),
            present=("o9/pages.tif",),
        ),
        Case(
            "a palette PNG",
            "images",
            [*d, "img/palette.png", "-o", "o9"],
            0,
            present=("o9/palette.png",),
        ),
        Case(
            "a CMYK JPEG", "images", [*d, "img/cmyk.jpg", "-o", "o9"], 0, present=("o9/cmyk.jpg",)
        ),
        Case(
            "a 16-bit gray PNG",
            "images",
            [*d, "img/gray16.png", "-o", "o9"],
            0,
            present=("o9/gray16.png",),
        ),
        Case("a gray PNG", "images", [*d, "img/gray.png", "-o", "o9"], 0, present=("o9/gray.png",)),
        Case(
            "a missing input", "images", [*d, "img/nope.png", "-o", "o9"], says=("does not exist",)
        ),
        Case(
            "a glob matching nothing",
            "images",
            [*d, "img/*.nothing", "-o", "o9"],
            says=("no image matches",),
        ),
        Case(
            "a tiny image among zero-shot inputs",
            "images",
            [*d, "img/img.png", "img/tiny.png", "-o", "o11", "--zero-shot", "--fit-steps", "3"],
            0,
            says=("take no part",),
            present=("o11/img.png", "o11/tiny.png"),
        ),
        Case(
            "only a tiny image for zero-shot",
            "images",
            [*d, "img/tiny.png", "-o", "o12", "--zero-shot", "--fit-steps", "3"],
            says=("16 px",),
        ),
        Case(
            "a read-only output folder",
            "images",
            [*d, "img/img.png", "-o", "readonly/out"],
            says=("readonly",),
            before=lambda r: (r / "readonly").mkdir() or os.chmod(r / "readonly", 0o555),
            tried=not as_root,
            why_not="running as root: permissions do not apply",
        ),
        # convert / info
        Case(
            "convert an empty file",
            "convert",
            ["convert", w + "empty.ckpt", "-o", "c.safetensors"],
            says=("empty",),
        ),
        Case(
            "convert random bytes",
            "convert",
            ["convert", w + "random.ckpt", "-o", "c.safetensors"],
            says=("random.ckpt",),
        ),
        Case(
            "convert a truncated checkpoint",
            "convert",
            ["convert", w + "truncated.ckpt", "-o", "c.safetensors"],
            says=("truncated.ckpt",),
        ),
        Case(
            "convert a malicious pickle",
            "convert",
            ["convert", w + "evil.ckpt", "-o", "c.safetensors"],
            says=("evil.ckpt",),
            absent=("weights/PWNED",),
        ),
        Case(
            "convert onto itself",
            "convert",
            ["convert", w + "tiny.ckpt", "-o", w + "tiny.ckpt"],
            says=("one of the inputs",),
            untouched=(w + "tiny.ckpt",),
        ),
        Case(
            "convert onto an existing file",
            "convert",
            ["convert", w + "tiny.ckpt", "-o", "existing.json"],
            says=("--overwrite",),
            untouched=("existing.json",),
        ),
        Case(
            "convert a missing file",
            "convert",
            ["convert", "nope.ckpt", "-o", "c.safetensors"],
            says=("does not exist",),
        ),
        Case("info of a folder", "convert", ["info", "img"], says=("folder",)),
        Case(
            "info of a missing file",
            "convert",
            ["info", "nope.safetensors"],
            says=("does not exist",),
        ),
        Case("info of an image", "convert", ["info", "img/img.png"], says=("img.png",)),
        Case(
            "info of an empty file",
            "convert",
            ["info", w + "empty.safetensors"],
            says=("empty.safetensors",),
        ),
        Case("models --card unknown", "convert", ["models", "--card", "nosuch"], says=("nosuch",)),
        # eval / submit
        Case(
            "eval --limit 0",
            "eval",
            ["eval", w + "good.safetensors", "--dataset", "cc", "--root", "img", "--limit", "0"],
            says=("--limit",),
        ),
        Case(
            "eval --out over earlier results",
            "eval",
            [
                "eval",
                w + "good.safetensors",
                "--dataset",
                "cc",
                "--root",
                "img",
                "--out",
                "evalout",
            ],
            says=("--overwrite",),
            untouched=("evalout/results.csv",),
        ),
        Case(
            "eval --save-outputs without --out",
            "eval",
            ["eval", w + "good.safetensors", "--dataset", "cc", "--root", "img", "--save-outputs"],
            says=("--out",),
        ),
        Case(
            "eval a missing root",
            "eval",
            ["eval", w + "good.safetensors", "--dataset", "cc", "--root", "nope"],
            says=("nope",),
        ),
        Case(
            "eval a folder without pairs",
            "eval",
            ["eval", w + "good.safetensors", "--dataset", "cc", "--root", "img"],
            says=("img",),
        ),
        Case(
            "submit onto the benchmark's own file",
            "eval",
            [
                "submit",
                "sidd-bench",
                w + "good.safetensors",
                "--root",
                "sidd",
                "-o",
                "sidd/BenchmarkNoisyBlocksSrgb.mat",
                "--overwrite",
            ],
            says=("one of the inputs",),
            untouched=("sidd/BenchmarkNoisyBlocksSrgb.mat",),
        ),
        Case(
            "submit onto an existing file",
            "eval",
            [
                "submit",
                "sidd-bench",
                w + "good.safetensors",
                "--root",
                "sidd",
                "-o",
                "existing.json",
            ],
            says=("--overwrite",),
            untouched=("existing.json",),
        ),
        Case(
            "submit dnd, a missing root",
            "eval",
            ["submit", "dnd", w + "good.safetensors", "--root", "nope", "-o", "dnd_out"],
            says=("nope",),
        ),
        # train
        Case(
            "train --out a file",
            "train",
            ["train", "tiny.yaml", "--out", "a_file"],
            says=("a_file",),
            untouched=("a_file",),
        ),
        Case("train a missing config", "train", ["train", "nope.yaml"], says=("nope.yaml",)),
        Case("train a config with a typo", "train", ["train", "typo.yaml"], says=("stpes",)),
        Case(
            "train --set an unknown key",
            "train",
            ["train", "tiny.yaml", "--out", "runs/x1", "--set", "train.stepz=3"],
            says=("stepz",),
            absent=("runs/x1",),
        ),
        Case(
            "train --set train.steps=-1",
            "train",
            ["train", "tiny.yaml", "--out", "runs/x2", "--set", "train.steps=-1"],
            says=("steps",),
            absent=("runs/x2",),
        ),
        Case(
            "train --set without =",
            "train",
            ["train", "tiny.yaml", "--out", "runs/x3", "--set", "train.steps"],
            says=("=",),
        ),
        Case(
            "train --resume without a run",
            "train",
            ["train", "tiny.yaml", "--out", "runs/none", "--resume"],
            says=("state.pt",),
        ),
        Case(
            "train fresh over a finished run",
            "train",
            ["train", "tiny.yaml", "--out", "runs/done"],
            says=("--resume",),
            before=_finished_run,
            untouched=("runs/done/last.safetensors",),
        ),
        Case(
            "train --resume with a corrupt state",
            "train",
            ["train", "tiny.yaml", "--out", "runs/done", "--resume"],
            says=("state.pt",),
            before=_corrupt_state,
        ),
        Case(
            "a decompression bomb in a training folder",
            "train",
            ["train", "bomb.yaml", "--out", "runs/bomb"],
            says=("MAX_IMAGE_PIXELS",),
            timeout=60,
        ),
        Case(
            "a second run into a busy run folder",
            "train",
            ["train", "tiny.yaml", "--out", "runs/busy", "--resume"],
            says=("in use",),
            before=_busy_run_folder,
            check=_stop_busy,
        ),
        Case(
            "SIGTERM, then --resume without repeating --set",
            "train",
            ["train", "tiny.yaml", "--out", "runs/sigterm", "--resume", "--quiet"],
            0,
            before=_interrupted_run_with_override,
            check=_resumed_to_override,
            timeout=300,
        ),
        # distill / demo / bench
        Case(
            "distill onto an existing file",
            "other",
            ["distill", "amsnet-nafnet-p", "--data", "img", "-o", "existing.json"],
            says=("--overwrite",),
            untouched=("existing.json",),
        ),
        Case(
            "distill from a student",
            "other",
            ["distill", "student-nafnet", "--data", "img", "-o", "s.safetensors"],
            says=("teacher",),
        ),
        Case(
            "distill --data missing",
            "other",
            ["distill", "amsnet-nafnet-p", "--data", "nope", "-o", "s.safetensors"],
            says=("nope",),
        ),
        Case(
            "distill --steps 0",
            "other",
            ["distill", "amsnet-nafnet-p", "--data", "img", "-o", "s.safetensors", "--steps", "0"],
            2,
            says=("--steps",),
        ),
        Case(
            "demo over an earlier demo",
            "other",
            ["demo", "--output", "demo_output"],
            says=("--overwrite",),
            untouched=("demo_output/report.html",),
            timeout=60,
        ),
        Case(
            "demo --adapt-steps -1",
            "other",
            ["demo", "--output", "demo2", "--adapt-steps", "-1"],
            says=("adapt",),
        ),
        Case(
            "bench chart onto an existing file",
            "other",
            ["bench", "chart", "results.csv", "-o", "existing.json"],
            says=("--overwrite",),
            untouched=("existing.json",),
        ),
        Case(
            "bench chart onto its own results file",
            "other",
            ["bench", "chart", "results.csv", "-o", "results.csv", "--overwrite"],
            says=("one of the inputs",),
            untouched=("results.csv",),
        ),
        Case(
            "bench cost --json onto an existing file",
            "other",
            ["bench", "cost", "--nets", "dncnn", "--json", "existing.json"],
            says=("--overwrite",),
            untouched=("existing.json",),
        ),
        Case(
            "bench speed --json and --markdown the same file",
            "other",
            ["bench", "speed", "--nets", "dncnn", "--json", "s.out", "--markdown", "s.out"],
            says=("same file",),
        ),
        Case("no command", "other", [], 2),
        Case("an unknown command", "other", ["denoize"], 2, says=("invalid choice",)),
    ]
    api = [
        (
            "0-255 floats",
            "refused(lambda: amsnet.denoise(picture.astype(np.float32)))",
            ("divide by 255",),
        ),
        (
            "NaN pixels",
            "x = np.full((16, 16, 3), np.nan, np.float32)\nrefused(lambda: amsnet.denoise(x))",
            ("NaN",),
        ),
        (
            "an empty array",
            "refused(lambda: amsnet.denoise(np.zeros((0, 4, 3), np.uint8)))",
            ("(0, 4, 3)",),
        ),
        ("fit seconds=0", "refused(lambda: amsnet.fit(picture, seconds=0))", ("seconds",)),
        ("fit steps=0", "refused(lambda: amsnet.fit(picture, steps=0))", ("steps",)),
        ("fit on no images", "refused(lambda: amsnet.fit([], steps=2))", ("image",)),
        (
            "a PIL image in mode F",
            "refused(lambda: amsnet.denoise(Image.new('F', (8, 8))))",
            ("'F'",),
        ),
        (
            "a tensor of ints",
            "refused(lambda: amsnet.denoise(torch.zeros(3, 8, 8, dtype=torch.uint8)))",
            ("float",),
        ),
        (
            "load a crafted header",
            "refused(lambda: amsnet.load('weights/huge-width.safetensors'))",
            ("width",),
        ),
    ]
    for name, code, says in api:
        out.append(Case(f"API: {name}", "api", [], 1, says=says, python=_api(code)))
    converted = [
        ("a palette PIL image comes back RGB", "Image.fromarray(picture).convert('P')", "RGB"),
        ("a CMYK PIL image comes back RGB", "Image.fromarray(picture).convert('CMYK')", "RGB"),
        ("an LA PIL image keeps its alpha", "Image.fromarray(picture).convert('LA')", "LA"),
    ]
    for name, make, mode in converted:
        code = f"out = amsnet.denoise({make})\nassert out.mode == {mode!r}, out.mode\nprint('ok')"
        out.append(Case(f"API: {name}", "api", [], 0, says=("ok",), python=_api(code)))
    clip = "out = amsnet.denoise(torch.rand(3, 32, 32) * 1.6 - 0.3)\n"
    clip += "assert 0 <= float(out.min()) and float(out.max()) <= 1\nprint('ok')"
    out.append(
        Case("API: float outputs are clipped", "api", [], 0, says=("ok",), python=_api(clip))
    )
    return out


# ----- running


def _run_cli(root: Path, argv: list[str]) -> None:
    subprocess.run(
        [sys.executable, "-m", "amsnet", *argv], cwd=root, capture_output=True, timeout=300
    )


def _digest(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def try_case(case: Case, root: Path) -> Outcome:
    if not case.tried:
        return Outcome(case, False, f"not tried: {case.why_not}")
    if case.before is not None:
        case.before(root)
    before = {name: _digest(root / name) for name in case.untouched}
    environment = {**os.environ, "OMP_NUM_THREADS": "2", "CI": "true"}
    command = (
        [sys.executable, "-c", case.python]
        if case.python
        else [sys.executable, "-m", "amsnet", *case.argv]
    )
    start = time.perf_counter()
    try:
        done = subprocess.run(
            command,
            cwd=root,
            capture_output=True,
            text=True,
            timeout=case.timeout,
            env=environment,
        )
    except subprocess.TimeoutExpired:
        return Outcome(
            case,
            False,
            f"still running after {case.timeout:.0f} s (a hang?)",
            time.perf_counter() - start,
        )
    seconds = time.perf_counter() - start
    output = done.stdout + done.stderr
    complaints = []
    if case.code == ANY_FAILURE:
        if done.returncode == 0:
            complaints.append("exit code 0, expected a failure")
    elif done.returncode != case.code:
        complaints.append(f"exit code {done.returncode}, expected {case.code}")
    if "Traceback (most recent call last)" in output:
        complaints.append("a traceback")
    lowered = output.lower()
    missing = [word for word in case.says if word.lower() not in lowered]
    if missing:
        complaints.append(f"the message lacks {missing}")
    for name, digest in before.items():
        if _digest(root / name) != digest:
            complaints.append(f"{name} was changed")
    complaints += [f"{name} was written" for name in case.absent if (root / name).exists()]
    complaints += [f"{name} is missing" for name in case.present if not (root / name).exists()]
    if case.check is not None:
        extra = case.check(root, output)
        if extra:
            complaints.append(extra)
    return Outcome(case, not complaints, "; ".join(complaints), seconds, output)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--group", help="only this group of cases")
    parser.add_argument("--json", type=Path, help="also write the outcomes here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    parser.add_argument("--verbose", action="store_true", help="print each case's output")
    args = parser.parse_args()
    if args.json is not None:
        from amsnet.atomic import check_new_output

        check_new_output(args.json, overwrite=args.overwrite, flag="--json")
    outcomes: list[Outcome] = []
    with tempfile.TemporaryDirectory(prefix="amsnet-robustness-") as folder:
        root = Path(folder)
        make_files(root)
        chosen = [c for c in cases(root) if args.group in (None, c.group)]
        for number, case in enumerate(chosen, start=1):
            outcome = try_case(case, root)
            outcomes.append(outcome)
            mark = "ok " if outcome.handled else ("-- " if not case.tried else "NO ")
            print(
                f"{mark}[{number}/{len(chosen)}] {case.group}: {case.name} "
                f"({outcome.seconds:.1f} s){'' if outcome.handled else ': ' + outcome.complaint}",
                flush=True,
            )
            if args.verbose or (not outcome.handled and case.tried):
                print(textwrap.indent(outcome.output.strip()[-1500:], "    "))
    tried = [o for o in outcomes if o.case.tried]
    handled = [o for o in tried if o.handled]
    print(
        f"\n{len(outcomes)} cases, {len(tried)} tried, {len(handled)} handled, "
        f"{len(tried) - len(handled)} not handled"
    )
    if args.json is not None:
        records = [
            {
                "group": o.case.group,
                "case": o.case.name,
                "tried": o.case.tried,
                "handled": o.handled,
                "complaint": o.complaint,
                "seconds": round(o.seconds, 2),
            }
            for o in outcomes
        ]
        from amsnet.atomic import atomic_write

        text = json.dumps(records, indent=1)
        atomic_write(args.json, lambda tmp: tmp.write_text(text))
    return 0 if len(handled) == len(tried) else 1


if __name__ == "__main__":
    sys.exit(main())
