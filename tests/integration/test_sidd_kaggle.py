"""The Kaggle SIDD board's CSV: writer, reader / checker, ``amsnet submit sidd-bench --format
kaggle`` on a tiny fake benchmark, and the protocol labels of the reports."""

from __future__ import annotations

import base64
import csv
import json
from pathlib import Path

import numpy as np
import pytest
import scipy.io
import torch

from amsnet.checkpoint import save_pretrained
from amsnet.cli import main
from amsnet.data import sidd_kaggle
from amsnet.data.benchmarks import EvalPair
from amsnet.data.io import to_uint8
from amsnet.data.protocols import protocol_for, PROTOCOLS
from amsnet.data.sidd import write_sidd_submission_csv
from amsnet.data.sidd_kaggle import (
    check_kaggle_submission,
    decode_block,
    encode_block,
    read_kaggle_submission,
    write_kaggle_submission,
)
from amsnet.errors import ConfigError, DataError, ShapeError
from amsnet.evaluate import evaluate
from amsnet.inference import load_for_inference
from amsnet.methods import AMSNet
from amsnet.nets import create_net
from amsnet.studies.bench.quality import load_config
from amsnet.studies.bench.study_report import markdown_table, study_protocol
from tests.nets_tiny import TINY


def blocks_array(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def write_rows(path: Path, lines: list[str], end: str = "\n") -> Path:
    path.write_text(end.join(lines) + end, newline="")
    return path


# --------------------------------------------------------------------------------------------
# The file


def test_rows_are_id_then_base64_of_c_order_bytes_in_image_major_order(tmp_path: Path) -> None:
    blocks = blocks_array((2, 3, 8, 8, 3))
    path = write_kaggle_submission(tmp_path / "SubmitSrgb.csv", blocks, strict=False)
    lines = path.read_bytes().split(b"\n")
    assert lines[0] == b"ID,BLOCK" and lines[-1] == b"" and len(lines) == 1 + 6 + 1
    for number, line in enumerate(lines[1:-1]):
        index, encoded = line.split(b",")
        assert int(index) == number
        image, block = divmod(number, 3)
        # Decoded by hand, independently of the module's reader.
        raw = base64.b64decode(encoded, validate=True)
        assert raw == blocks[image, block].tobytes()
        np.testing.assert_array_equal(
            np.frombuffer(raw, dtype=np.uint8).reshape(8, 8, 3), blocks[image, block]
        )
    decoded = read_kaggle_submission(path, strict=False, block_shape=(8, 8, 3))
    np.testing.assert_array_equal(decoded.reshape(blocks.shape), blocks)


def test_block_encoding_is_c_order_whatever_the_memory_layout() -> None:
    block = blocks_array((4, 5, 3))
    fortran = np.asfortranarray(block)
    assert not fortran.flags.c_contiguous
    assert encode_block(fortran) == encode_block(block)
    np.testing.assert_array_equal(decode_block(encode_block(fortran), (4, 5, 3)), block)
    # 256 x 256 x 3 bytes: no base64 padding, 262,144 characters (what peers check for).
    assert len(encode_block(np.zeros((256, 256, 3), dtype=np.uint8))) == 262_144


def test_full_size_submission_is_written_and_checked_strictly(tmp_path: Path) -> None:
    blocks = blocks_array((40, 32, 256, 256, 3))
    path = write_kaggle_submission(tmp_path / "SubmitSrgb.csv", blocks)  # checked once inside
    assert check_kaggle_submission(path) == 1280
    changed = blocks.copy()
    changed[39, 31, 255, 255, 2] ^= 1
    with pytest.raises(DataError, match=r"ID 1279 \(image 39, block 31\) differs"):
        check_kaggle_submission(path, expected=changed)


def test_the_earlier_name_writes_the_same_file(tmp_path: Path) -> None:
    blocks = blocks_array((1, 2, 4, 4, 3))
    new = write_kaggle_submission(tmp_path / "a.csv", blocks, strict=False)
    old = write_sidd_submission_csv(tmp_path / "b.csv", blocks, strict=False)
    assert new.read_bytes() == old.read_bytes()


def test_strict_check_needs_1280_rows_of_256_blocks(tmp_path: Path) -> None:
    path = write_kaggle_submission(
        tmp_path / "SubmitSrgb.csv", blocks_array((1, 3, 256, 256, 3)), strict=False
    )
    with pytest.raises(DataError, match=r"holds 3 rows, the Kaggle board takes 1280.*--no-strict"):
        check_kaggle_submission(path)
    assert check_kaggle_submission(path, strict=False) == 3
    with pytest.raises(ConfigError, match="--no-strict"):
        check_kaggle_submission(path, block_shape=(8, 8, 3))
    with pytest.raises(ShapeError, match="40 x 32 blocks, got 1 x 3"):
        write_kaggle_submission(tmp_path / "x.csv", blocks_array((1, 3, 256, 256, 3)))
    assert not (tmp_path / "x.csv").exists()


def test_reader_accepts_crlf_and_quoted_fields(tmp_path: Path) -> None:
    blocks = [blocks_array((2, 2, 3), seed) for seed in range(2)]
    lines = ['"ID","BLOCK"'] + [f'{i},"{encode_block(b)}"' for i, b in enumerate(blocks)]
    path = write_rows(tmp_path / "windows.csv", lines, end="\r\n")
    decoded = read_kaggle_submission(path, strict=False, block_shape=(2, 2, 3))
    np.testing.assert_array_equal(decoded, np.stack(blocks))


@pytest.mark.parametrize(
    ("lines", "pattern"),
    [
        ([], "is empty"),
        (["Id,Block", "0,AAAA"], r"line 1 is 'Id,Block', the Kaggle board's header is ID,BLOCK"),
        (["ID,BLOCK,EXTRA"], "line 1"),
        (["ID,BLOCK"], "header but no rows"),
        (["ID,BLOCK", "1,AAAA"], r"line 2: ID '1', expected 0"),
        (["ID,BLOCK", "0,AAAA", "0,AAAA"], r"line 3: ID '0', expected 1"),
        (["ID,BLOCK", "0,AA!A"], r"line 2 \(ID 0\): BLOCK is not base64"),
        (["ID,BLOCK", "0,AAAAAAAA"], r"decodes to 6 bytes, a uint8 block of \(1, 1, 3\) has 3"),
        (["ID,BLOCK", "0,AAAA,x"], "has 3 fields, expected 2"),
        (["ID,BLOCK", "0,AAAA", "", "1,AAAA"], "line 3 is blank, yet rows follow it"),
    ],
)
def test_layout_errors_name_the_file_and_line(
    tmp_path: Path, lines: list[str], pattern: str
) -> None:
    path = tmp_path / "SubmitSrgb.csv"
    path.write_text("\n".join(lines) + ("\n" if lines else ""))
    with pytest.raises(DataError, match=pattern) as error:
        check_kaggle_submission(path, strict=False, block_shape=(1, 1, 3))
    assert str(path) in str(error.value)


def test_missing_and_binary_files_are_data_errors(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="does not exist"):
        check_kaggle_submission(tmp_path / "none.csv")
    binary = tmp_path / "SubmitSrgb.mat"
    binary.write_bytes(b"ID,BLOCK\n\xff\xfe\x00")
    with pytest.raises(DataError, match="not a text"):
        check_kaggle_submission(binary, strict=False, block_shape=(1, 1, 3))


def test_writer_checks_the_file_before_it_takes_its_name(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "SubmitSrgb.csv"
    target.write_text("earlier\n")

    def corrupted(block: np.ndarray) -> str:
        return base64.b64encode(b"\x00" * block.size).decode("ascii")

    monkeypatch.setattr(sidd_kaggle, "encode_block", corrupted)
    with pytest.raises(DataError, match=r"was not written.*ID 0 \(image 0, block 0\) differs"):
        write_kaggle_submission(target, blocks_array((1, 2, 4, 4, 3)) | 1, strict=False)
    assert target.read_text() == "earlier\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["SubmitSrgb.csv"]


# --------------------------------------------------------------------------------------------
# amsnet submit sidd-bench --format kaggle


@pytest.fixture
def weights(tmp_path: Path) -> Path:
    torch.manual_seed(0)
    return save_pretrained(
        AMSNet(create_net("dncnn", preset=None, **TINY["dncnn"])), tmp_path / "m.safetensors"
    )


@pytest.fixture
def bench(tmp_path: Path) -> tuple[Path, np.ndarray]:
    blocks = blocks_array((2, 3, 16, 16, 3))
    root = tmp_path / "bench"
    root.mkdir()
    scipy.io.savemat(root / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": blocks})
    return root, blocks


def submit(weights: Path, root: Path, out: Path, *options: str) -> int:
    command = ["submit", "sidd-bench", str(weights), "--root", str(root), "-o", str(out)]
    return main([*command, "--device", "cpu", "--precision", "fp32", *options])


def test_submit_kaggle_writes_a_checked_csv_of_the_denoised_blocks(
    tmp_path: Path, weights: Path, bench: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture
) -> None:
    root, noisy = bench
    out = tmp_path / "SubmitSrgb.csv"
    assert submit(weights, root, out, "--format", "kaggle", "--no-strict", "--seed", "3") == 0
    printed = capsys.readouterr().out
    assert "6 blocks, checked" in printed
    assert "kaggle.com/competitions/sidd-benchmark-srgb-psnr" in printed
    assert protocol_for("sidd-bench-kaggle") in printed
    decoded = read_kaggle_submission(out, strict=False, block_shape=(16, 16, 3))

    # The same blocks, denoised here in the command's order with the command's seed.
    method = load_for_inference(weights, "cpu", "fp32")
    generator = torch.Generator().manual_seed(3)
    for index in range(6):
        image, block = divmod(index, 3)
        tensor = torch.from_numpy(noisy[image, block]).permute(2, 0, 1).float() / 255
        denoised = method.denoise(tensor[None], generator=generator, refine=True)[0]
        np.testing.assert_array_equal(decoded[index], to_uint8(denoised))

    # The .mat of the same run holds the same blocks.
    mat = tmp_path / "SubmitSrgb.mat"
    assert submit(weights, root, mat, "--no-strict", "--seed", "3") == 0
    assert "old server" in capsys.readouterr().out
    cells = scipy.io.loadmat(mat)["DenoisedBlocksSrgb"]
    for index in range(6):
        np.testing.assert_array_equal(cells[divmod(index, 3)], decoded[index])


def test_submit_refuses_bad_input_before_any_work(
    tmp_path: Path, weights: Path, bench: tuple[Path, np.ndarray], capsys: pytest.CaptureFixture
) -> None:
    root, _ = bench
    out = tmp_path / "SubmitSrgb.csv"
    # The published 40 x 32 blocks are required unless --no-strict.
    assert submit(weights, root, out, "--format", "kaggle") == 1
    assert "--no-strict" in capsys.readouterr().err
    assert not out.exists()
    out.write_text("earlier\n")
    assert submit(weights, root, out, "--format", "kaggle", "--no-strict") == 1
    assert "exists; choose another name or pass --overwrite" in capsys.readouterr().err
    assert out.read_text() == "earlier\n"
    assert submit(weights, root, out, "--format", "kaggle", "--no-strict", "--overwrite") == 0
    assert check_kaggle_submission(out, strict=False, block_shape=(16, 16, 3)) == 6
    capsys.readouterr()
    for name, options, message in [
        ("s.mat", ["--format", "kaggle"], "names a .mat file but --format is kaggle"),
        ("s.csv", [], "names a .csv file but --format is mat"),
        ("s.csv", ["--format", "kaggle", "--mat-version", "v7.3"], "--mat-version is for"),
        ("s.mat", ["--format", "v5", "--mat-version", "v7.3"], "disagree"),
    ]:
        assert submit(weights, root, tmp_path / name, *options, "--no-strict") == 1
        assert message in capsys.readouterr().err
        assert not (tmp_path / name).exists()


def test_the_earlier_format_spelling_still_chooses_the_mat_version(
    tmp_path: Path, weights: Path, bench: tuple[Path, np.ndarray]
) -> None:
    root, _ = bench
    for options in (["--format", "v7.3"], ["--format", "mat", "--mat-version", "v7.3"]):
        out = tmp_path / f"{len(options)}" / "SubmitSrgb.mat"
        assert submit(weights, root, out, *options, "--no-strict") == 0
        assert out.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"


# --------------------------------------------------------------------------------------------
# Protocol labels


def test_every_report_format_carries_the_protocol(tmp_path: Path) -> None:
    class Identity(torch.nn.Module):
        backbone = torch.nn.Identity()

        def method_config(self):
            return {"name": "identity"}

        def denoise(self, noisy, *, generator, refine):
            return noisy

    clean = torch.full((3, 16, 16), 0.5)
    report = evaluate(Identity(), [EvalPair("a", clean, clean)], dataset="polyu")
    assert report.protocol == "PolyU, local with ground truth (PSNR/SSIM computed by amsnet)"
    assert report.protocol in report.to_markdown().splitlines()[-1]
    saved = json.loads(report.to_json(tmp_path / "r.json").read_text())
    assert saved["protocol"] == report.protocol and "8-bit" in saved["metrics"]
    with report.to_csv(tmp_path / "r.csv").open(newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [row["protocol"] for row in rows] == [report.protocol]
    other = evaluate(Identity(), [EvalPair("a", clean, clean)], dataset="x", protocol="mine")
    assert other.protocol == "mine"


def test_protocol_labels_keep_the_benchmarks_apart() -> None:
    labels = {name: protocol_for(name) for name in PROTOCOLS}
    assert len(set(labels.values())) == len(labels)
    assert (
        labels["sidd-val"] == "SIDD validation, local (1280 blocks, PSNR/SSIM computed by amsnet)"
    )
    assert "Kaggle board" in labels["sidd-bench-kaggle"]
    assert "not comparable" in labels["sidd-bench-kaggle"]
    assert "old server" in labels["sidd-bench-mat"]
    assert protocol_for("sidd-val", detail="128 of 1280 blocks").startswith(
        "SIDD validation, local (128 of 1280 blocks"
    )
    assert protocol_for("awgn", detail="sigma 25") == (
        "synthetic AWGN on clean images, local with ground truth "
        "(sigma 25; PSNR/SSIM computed by amsnet)"
    )


def test_eval_cli_labels_a_subset_of_the_sidd_validation_blocks(
    tmp_path: Path, weights: Path
) -> None:
    blocks = blocks_array((2, 3, 16, 16, 3))
    sidd = tmp_path / "sidd"
    sidd.mkdir()
    scipy.io.savemat(sidd / "ValidationNoisyBlocksSrgb.mat", {"ValidationNoisyBlocksSrgb": blocks})
    scipy.io.savemat(sidd / "ValidationGtBlocksSrgb.mat", {"ValidationGtBlocksSrgb": blocks})
    out = tmp_path / "report"
    arguments = ["eval", str(weights), "--dataset", "sidd-val", "--root", str(sidd)]
    arguments += ["--device", "cpu", "--no-strict", "--limit", "4", "--out", str(out)]
    assert main(arguments) == 0
    protocol = json.loads((out / "results.json").read_text())["protocol"]
    assert protocol.startswith("SIDD validation, local (4 blocks of a file of another size")


def test_study_reports_name_their_protocol(tmp_path: Path) -> None:
    config = load_config({"dataset": "awgn", "root": str(tmp_path), "sigma": 25})
    protocol = study_protocol(config)
    assert protocol == (
        "synthetic AWGN on clean images, local with ground truth (sigma 25; each method trained "
        "on these noisy images for the same CPU budget; PSNR/SSIM computed by amsnet)"
    )
    assert f"Protocol: {protocol}." in markdown_table(config, [])
    camera = load_config({"dataset": "camera", "root": str(tmp_path), "level": "high"})
    assert "(level high; each method" in study_protocol(camera)
