"""Reduced precision against float32, side by side in one run: speed, quality, training.

Four parts (``--parts``; default: speed, quality and train), each printing a markdown table:

* ``speed``: AMSNet B of every backbone preset (``--preset``, default the paper's) at
  256x256, and the small NAFNet at 512x512, timed in fp32 and in bfloat16
  (:func:`amsnet.studies.bench.speed.run_speed`, channels-last weights, the backbone under
  autocast),
  with the achieved GFLOP/s against the convolution ceiling of each precision;
* ``quality``: each ``--weights`` file (default: the shipped models) denoises CC15 and the
  PolyU crops in fp32 and in bfloat16 with the same seeds; the PSNR / SSIM change is what
  reduced precision costs that model;
* ``layout``: the same AMSNet B timings in both memory formats (channels-last, what
  inference uses, against PyTorch's default), in every precision;
* ``train``: the paper UNet (AMSNet stage B, crop 160, batch 4, PD 5) trained for ``--steps``
  steps on the real-noise pool (PolyU full-size JPEGs) twice from the same seed, in fp32 and
  in bfloat16: steps per second, the validation PSNR at the end (PolyU crops), and both final
  models evaluated on CC15 in both precisions.

On a CPU without native bfloat16 (``grep avx512_bf16 /proc/cpuinfo``) the bfloat16 rows are
emulated and are not results: the script says so and skips them unless ``--emulated``.

    python benchmarks/bench_precision.py --json precision.json
    python benchmarks/bench_precision.py --parts train --steps 300 --keep runs/precision
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import torch

from amsnet.atomic import atomic_path, check_new_output
from amsnet.config import ExperimentConfig, validate
from amsnet.data.benchmarks import load_pairs
from amsnet.evaluate import evaluate
from amsnet.inference import load_for_inference
from amsnet.precision import cpu_has_native_bf16
from amsnet.runtime import resolve_device
from amsnet.studies.bench.speed import run_speed, speed_markdown, SpeedOptions
from amsnet.zoo import list_models

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
SETS = {"cc15": ("cc", DATA / "cc15"), "polyu_crops": ("polyu", DATA / "polyu" / "CroppedImages")}


def speed_part(args: argparse.Namespace, precisions: list[str]) -> dict[str, Any]:
    paper = run_speed(
        SpeedOptions(
            nets=args.nets,
            preset=args.preset,
            device=args.device,
            repeats=args.repeats,
            refine=False,
            size=256,
            megapixel_size=None,
            precisions=tuple(precisions),
        )
    )
    print(speed_markdown(paper), flush=True)
    small = run_speed(
        SpeedOptions(
            nets=["nafnet"],
            preset="small",
            device=args.device,
            repeats=max(args.repeats, 5),
            refine=False,
            size=512,
            megapixel_size=None,
            precisions=tuple(precisions),
        )
    )
    print(speed_markdown(small), flush=True)
    return {"paper": paper, "small_nafnet_512": small}


def layout_part(args: argparse.Namespace, precisions: list[str]) -> dict[str, Any]:
    """AMSNet B per backbone in both memory formats and every precision (ms per image)."""
    cases = [(args.preset, 256, args.nets), ("small", 512, ["nafnet"])]
    table: dict[str, dict[str, float]] = {}
    for preset, size, nets in cases:
        for layout in ("channels_last", "default"):
            report = run_speed(
                SpeedOptions(
                    nets=nets,
                    preset=preset,
                    device=args.device,
                    repeats=args.repeats,
                    refine=False,
                    size=size,
                    megapixel_size=None,
                    layout=layout,
                    precisions=tuple(precisions),
                )
            )
            for row in report["results"]:
                key = f"{row['net']} {preset} {size}x{size} {row['precision']}"
                table.setdefault(key, {})[layout] = row["ms_per_image"]
    lines = [
        "| backbone, preset, image, precision | channels-last ms | default ms | "
        "channels-last speed-up |",
        "|---|---:|---:|---:|",
    ]
    for key, times in table.items():
        lines.append(
            f"| {key} | {times['channels_last']:.0f} | {times['default']:.0f} | "
            f"{times['default'] / times['channels_last']:.2f}x |"
        )
    print("\n".join(lines) + "\n", flush=True)
    return table


def quality_of(method: torch.nn.Module, device: torch.device, limit: int | None) -> dict:
    """PSNR / SSIM of ``method`` (in its current precision) on every set present."""
    out = {}
    for name, (dataset, root) in SETS.items():
        if not root.is_dir():
            continue
        report = evaluate(
            method, load_pairs(dataset, root, limit=limit), dataset=name, device=device
        )
        summary = report.summary()
        out[name] = {
            "psnr": summary["psnr"],
            "ssim": summary["ssim_matlab"],
            "seconds_per_megapixel": summary["seconds_per_megapixel"],
        }
    return out


def compare_precisions(
    weights: str, device: torch.device, precisions: list[str], limit: int | None
) -> dict[str, Any]:
    """The quality of one weights file in each precision, and the change from fp32."""
    table = {}
    for precision in precisions:
        method = load_for_inference(weights, str(device), precision)
        table[precision] = quality_of(method, device, limit)
    for precision in precisions:
        if precision == "fp32":
            continue
        for name, values in table[precision].items():
            base = table["fp32"][name]
            values["psnr_change"] = values["psnr"] - base["psnr"]
            values["ssim_change"] = values["ssim"] - base["ssim"]
    return table


def quality_markdown(label: str, table: dict[str, Any]) -> str:
    lines = [
        f"{label}",
        "",
        "| set | precision | PSNR (dB) | change | SSIM | change | s/MP |",
        "|---|---|---:|---:|---:|---:|---:|",
    ]
    for precision, sets in table.items():
        for name, v in sets.items():
            change = v.get("psnr_change")
            ssim_change = v.get("ssim_change")
            lines.append(
                f"| {name} | {precision} | {v['psnr']:.3f} | "
                f"{'' if change is None else f'{change:+.3f}'} | {v['ssim']:.4f} | "
                f"{'' if ssim_change is None else f'{ssim_change:+.4f}'} | "
                f"{v['seconds_per_megapixel']:.2f} |"
            )
    return "\n".join(lines) + "\n"


def quality_part(args: argparse.Namespace, device: torch.device, precisions: list[str]) -> dict:
    weights = args.weights or [model.name for model in list_models()]
    results = {}
    for name in weights:
        results[str(name)] = table = compare_precisions(str(name), device, precisions, args.limit)
        print(quality_markdown(f"weights {name}", table), flush=True)
    return results


def train_experiment(args: argparse.Namespace, precision: str, cache: Path) -> ExperimentConfig:
    pool = DATA / "polyu"
    return validate(
        ExperimentConfig,
        {
            "experiment": {"name": f"precision-{precision}", "seed": 0},
            "method": {"name": "amsnet", "pd_factor_train": 5, "pd_factor_eval": 2},
            "net": {"name": args.train_net, "preset": "paper"},
            "data": {
                "train": {
                    "kind": "noisy_folder",
                    "root": str(pool),
                    "include": ["OriginalImages/*_Real.JPG"],
                    "crop_size": 160,
                    "batch_size": 4,
                    "workers": 1,
                    "cache_dir": str(cache),
                    "flips": True,
                },
                "val": {
                    "dataset": "polyu",
                    "root": str(pool / "CroppedImages"),
                    "limit": args.val_limit,
                    "samples": 0,
                },
            },
            "train": {
                "steps": args.steps,
                "optimizer": {"name": "adamw", "lr": args.lr},
                "schedule": {"name": "cosine", "warmup_steps": min(20, args.steps // 10)},
                "grad_clip": 1.0,
                "precision": precision,
                "log_every": max(1, min(25, args.steps // 4)),
                "val_every": args.steps,
                "checkpoint_every": max(1, args.steps // 4),
                "device": args.device,
                "tensorboard": False,
            },
        },
        "precision benchmark",
    )


def steps_per_second(run_dir: Path, skip: int) -> float:
    """Steps per second over the logged steps after the first ``skip`` (start-up excluded)."""
    with (run_dir / "log.csv").open(newline="") as handle:
        rows = [r for r in csv.DictReader(handle) if r.get("steps_per_second")]
    rows = [r for r in rows if int(r["step"]) > skip] or rows
    steps = [int(r["step"]) for r in rows]
    # Each row's rate covers the steps since the row before it.
    spans = [b - a for a, b in zip([skip, *steps[:-1]], steps, strict=True)]
    seconds = sum(span / float(r["steps_per_second"]) for span, r in zip(spans, rows, strict=True))
    return sum(spans) / seconds


def train_part(args: argparse.Namespace, device: torch.device, precisions: list[str]) -> dict:
    from amsnet.training import Trainer

    if not (DATA / "polyu" / "OriginalImages").is_dir():
        print("train: skipped, ../shared/data/polyu/OriginalImages is absent")
        return {}
    keep = args.keep
    scratch = tempfile.TemporaryDirectory() if keep is None else None
    base = Path(scratch.name) if scratch is not None else keep
    results: dict[str, Any] = {}
    try:
        for precision in precisions:
            run_dir = base / precision
            config = train_experiment(args, precision, base / "cache")
            start = time.perf_counter()
            result = Trainer(
                config, run_dir=run_dir, quiet=True, resume=(run_dir / "state.pt").is_file()
            ).fit()
            results[precision] = {
                "steps": result.step,
                "wall_seconds": time.perf_counter() - start,
                "steps_per_second": steps_per_second(run_dir, skip=config.train.log_every),
                "val_psnr": result.best_psnr,
                "weights": str(result.last_path),
            }
            print(
                f"train {precision}: {results[precision]['steps_per_second']:.3f} steps/s, "
                f"validation PSNR {result.best_psnr:.3f} dB after {result.step} steps",
                flush=True,
            )
        for precision in precisions:
            results[precision]["cc15"] = compare_precisions(
                results[precision]["weights"], device, precisions, args.limit
            )
            print(
                quality_markdown(
                    f"trained in {precision}, evaluated in each precision",
                    results[precision]["cc15"],
                ),
                flush=True,
            )
    finally:
        if scratch is not None:
            scratch.cleanup()
    if "fp32" in results:
        print(
            "| trained in | steps | steps/s | speed-up | validation PSNR (dB) | change |\n"
            "|---|---:|---:|---:|---:|---:|"
        )
        base_rate = results["fp32"]["steps_per_second"]
        base_psnr = results["fp32"]["val_psnr"]
        for precision, r in results.items():
            print(
                f"| {precision} | {r['steps']} | {r['steps_per_second']:.3f} | "
                f"{r['steps_per_second'] / base_rate:.2f}x | {r['val_psnr']:.3f} | "
                f"{r['val_psnr'] - base_psnr:+.3f} |"
            )
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", nargs="+", choices=["speed", "quality", "train", "layout"])
    parser.add_argument("--precisions", nargs="+", default=["fp32", "bf16"])
    parser.add_argument("--device", default="auto")
    parser.add_argument("--nets", nargs="+", help="speed: only these backbones")
    parser.add_argument("--preset", default="paper", help="speed: preset of every backbone")
    parser.add_argument("--repeats", type=int, default=3, help="speed: timed runs")
    parser.add_argument("--weights", nargs="+", help="quality: weights (default: shipped)")
    parser.add_argument("--limit", type=int, help="quality: at most this many images per set")
    parser.add_argument("--steps", type=int, default=300, help="train: steps of each run")
    parser.add_argument("--lr", type=float, default=3e-4, help="train: peak learning rate")
    parser.add_argument("--train-net", default="unet", help="train: backbone (paper preset)")
    parser.add_argument("--val-limit", type=int, default=6, help="train: PolyU crops validated")
    parser.add_argument("--keep", type=Path, help="train: keep the runs here (and resume them)")
    parser.add_argument("--emulated", action="store_true", help="measure emulated bf16 too")
    parser.add_argument("--json", type=Path, help="also write every figure here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    args = parser.parse_args(argv)
    if args.json is not None:
        check_new_output(args.json, overwrite=args.overwrite, flag="--json")
    device = resolve_device(args.device)
    precisions = list(dict.fromkeys(["fp32", *args.precisions]))
    native = device.type == "cuda" or cpu_has_native_bf16()
    if not native and not args.emulated:
        print(
            "this CPU has no native bfloat16 (no avx512_bf16 / amx_bf16 flag): reduced "
            "precision would be emulated, which is not a result; measuring fp32 only "
            "(--emulated measures it anyway)"
        )
        precisions = ["fp32"]
    parts = args.parts or ["speed", "quality", "train"]
    report: dict[str, Any] = {
        "environment": {
            "device": str(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "native_bf16": native,
            "precisions": precisions,
        }
    }

    def save() -> None:
        if args.json is not None:
            with atomic_path(args.json) as tmp:
                tmp.write_text(json.dumps(report, indent=2) + "\n")

    if "speed" in parts:
        report["speed"] = speed_part(args, precisions)
        save()
    if "layout" in parts:
        report["layout"] = layout_part(args, precisions)
        save()
    if "quality" in parts:
        report["quality"] = quality_part(args, device, precisions)
        save()
    if "train" in parts:
        report["train"] = train_part(args, device, precisions)
        save()
    return 0


if __name__ == "__main__":
    sys.exit(main())
