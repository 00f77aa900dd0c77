"""``amsnet bench cost|speed|chart`` end to end on tiny sizes: outputs, files, exit codes."""

from __future__ import annotations

import json
import sys
import xml.etree.ElementTree as ElementTree

import pytest

from amsnet.cli import main


def test_bench_without_a_benchmark_prints_usage_and_exits_2(capsys):
    assert main(["bench"]) == 2
    assert "cost" in capsys.readouterr().out


def test_cost_prints_the_table_and_writes_json(tmp_path, capsys):
    out = tmp_path / "cost.json"
    args = ["bench", "cost", "--preset", "small", "--nets", "dncnn", "dbsnl", "--size", "32"]
    assert main([*args, "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| AMSNet | dncnn | small |" in text and "| AP-BSN | dbsnl | small |" in text
    rows = json.loads(out.read_text())["rows"]
    assert [(r["net"], r["passes_b"], r["passes_e"]) for r in rows] == [
        ("dncnn", 2, 18),
        ("dbsnl", 1, 9),
    ]
    assert rows[0]["one_pass"]["macs"] * 2 == rows[0]["one_pass"]["flops"]


def test_cost_of_an_unknown_backbone_exits_1_naming_the_registered_ones(capsys):
    assert main(["bench", "cost", "--nets", "dcnn"]) == 1
    assert "unknown backbone 'dcnn'" in capsys.readouterr().err


def test_speed_measures_every_column_and_writes_json_and_markdown(tmp_path, capsys):
    report, table = tmp_path / "speed.json", tmp_path / "speed.md"
    args = ["bench", "speed", "--preset", "small", "--nets", "dncnn", "--device", "cpu"]
    args += ["--size", "16", "--megapixel-size", "24", "--repeats", "1"]
    assert main([*args, "--json", str(report), "--markdown", str(table)]) == 0
    printed = capsys.readouterr().out
    assert table.read_text() == printed
    data = json.loads(report.read_text())
    assert {"device", "device_name", "threads", "torch", "date"} <= set(data["environment"])
    rows = data["results"]
    assert [(r["label"], r["variant"]) for r in rows] == [
        ("AMSNet (dncnn) B", "B"),
        ("AMSNet (dncnn) E", "E"),
    ]
    for row in rows:
        assert row["ms_per_image"] > 0 and row["ms_per_megapixel"] > 0
        assert row["seconds_per_image"] == row["ms_per_image"] / 1e3
        if sys.platform.startswith("linux"):
            assert row["peak_mib"] is not None
    # R3 adds 16 full-resolution passes to the 2 of B.
    assert rows[1]["gflop_per_image"] == pytest.approx(rows[0]["gflop_per_image"] * 9)


def test_speed_skips_a_megapixel_run_that_would_not_fit_and_saves_every_record(
    tmp_path, capsys, monkeypatch
):
    import amsnet.studies.bench.speed as speed

    saved = []
    original = speed.run_speed

    def spying_run_speed(options, on_record=None):
        def spy(report):
            saved.append(len(report["results"]))
            on_record(report)

        return original(options, on_record=spy)

    monkeypatch.setattr(speed, "run_speed", spying_run_speed)
    monkeypatch.setattr(speed, "available_memory", lambda device: 0)  # nothing free
    report = tmp_path / "speed.json"
    args = ["bench", "speed", "--preset", "small", "--nets", "dncnn", "--device", "cpu"]
    args += ["--size", "16", "--megapixel-size", "24", "--repeats", "1"]
    assert main([*args, "--json", str(report)]) == 0
    printed = capsys.readouterr().out
    assert saved == [1, 2]  # the file was written after each record
    rows = json.loads(report.read_text())["results"]
    if not sys.platform.startswith("linux"):
        pytest.skip("peak memory is measured on Linux only")
    for row in rows:
        assert row["ms_per_megapixel"] is None
        assert row["megapixel_skipped"].startswith("needs about")
    assert "Per megapixel skipped for AMSNet (dncnn) E: needs about" in printed


def test_speed_can_run_r3_one_pass_per_call(tmp_path, capsys):
    report = tmp_path / "speed.json"
    args = ["bench", "speed", "--preset", "small", "--nets", "dncnn", "--device", "cpu"]
    args += ["--size", "16", "--no-megapixel", "--repeats", "1", "--refine-batch", "1"]
    assert main([*args, "--json", str(report)]) == 0
    assert "R3 1 pass(es) per backbone call" in capsys.readouterr().out
    data = json.loads(report.read_text())
    assert data["environment"]["refine_batch"] == 1
    base, refined = data["results"]
    # The same 18 passes, in 1 + 8 calls instead of 2: the same FLOPs.
    assert refined["gflop_per_image"] == pytest.approx(base["gflop_per_image"] * 9)
    assert main([*args[:-2], "--refine-batch", "0"]) == 1


def test_speed_rejects_zero_repeats(capsys):
    assert main(["bench", "speed", "--nets", "dncnn", "--repeats", "0"]) == 1
    assert "--repeats" in capsys.readouterr().err


def test_chart_writes_svg_and_png_and_reports_bad_fields(tmp_path, capsys):
    results = tmp_path / "results.csv"
    results.write_text("label,psnr,seconds_per_image\nours,36.5,0.4\n")
    svg, png = tmp_path / "chart.svg", tmp_path / "chart.png"
    assert main(["bench", "chart", str(results), "-o", str(svg), "--png", str(png), "--paper"]) == 0
    assert capsys.readouterr().out.split() == [str(svg), str(png)]
    texts = {e.text for e in ElementTree.parse(svg).getroot().iter() if e.text}
    assert {"ours", "results.csv", "AMSNet (Restormer)"} <= texts
    assert (
        main(["bench", "chart", str(results), "-o", str(svg), "--y-field", "ssim", "--overwrite"])
        == 1
    )
    err = capsys.readouterr().err
    assert "results.csv" in err and "'ssim' is missing" in err
    assert main(["bench", "chart", str(tmp_path / "none.csv")]) == 1
    assert "none.csv: no such results file" in capsys.readouterr().err


def _clean_images(folder):
    import numpy as np

    from amsnet.data.io import write_image

    y, x = np.mgrid[0:32, 0:40] / 32.0
    for index in range(2):
        image = np.stack([np.sin(3 * x + index), np.cos(2 * y), x * y], axis=-1) * 0.4 + 0.5
        write_image(folder / f"im{index}.png", (image * 255).round().astype("uint8"))
    return folder


def test_quality_runs_the_study_and_prints_its_table(tmp_path, capsys):
    root = _clean_images(tmp_path / "clean")
    out = tmp_path / "study"
    args = ["bench", "quality", "awgn", str(root), "-o", str(out), "--sigma", "25"]
    args += ["--seeds", "0", "--cpu-seconds", "0.3", "--net", "dncnn", "--crop", "16"]
    args += ["--batch-size", "2", "--methods", "noisy", "amsnet-b"]
    args += ["--set", "amsnet.num_masks=3"]
    assert main(args) == 0
    text = capsys.readouterr().out
    assert "| AMSNet-B |" in text and "| noisy input |" in text
    study = json.loads((out / "study.json").read_text())
    assert study["config"]["amsnet"] == {"num_masks": 3}


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--set", "amsnet_pd=2"], "amsnet.KEY=VALUE"),
        (["--set", "amsnet.pd_factor_tran=2", "--methods", "amsnet-b"], "pd_factor_tran"),
        (["--methods", "bm4d"], "unknown methods"),
    ],
)
def test_quality_bad_arguments_exit_1_with_the_reason(tmp_path, capsys, extra, message):
    root = _clean_images(tmp_path / "clean")
    args = ["bench", "quality", "awgn", str(root), "-o", str(tmp_path / "o"), "--sigma", "5"]
    args += ["--seeds", "0", "--cpu-seconds", "0.1", "--net", "dncnn", "--crop", "16"]
    assert main([*args, *extra]) == 1
    assert message in capsys.readouterr().err
