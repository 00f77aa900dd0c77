"""Training throughput per backbone preset, with the real data pipeline and without it.

For every method/backbone pair it runs :class:`amsnet.training.Trainer` twice on the current
device and prints steps per second, crops per second and PD sub-images per second (crops times
the PD factor squared: what the backbone actually sees in AMSNet's batch layout):

* ``pipeline``: random crops of a folder of PNG images through the DataLoader (``--workers``
  processes, images decoded once and kept in memory), exactly as ``amsnet train`` reads a
  ``noisy_folder``;
* ``in-memory``: the same number of crops per step, made beforehand and served from memory
  with no worker, so the step time is the model's alone.

The ratio ``pipeline / in-memory`` tells whether the data pipeline is the bottleneck (1.0:
it keeps up). Rates are measured over the steps after ``--warmup`` (DataLoader start-up,
first-call allocations and cuDNN's kernel search excluded), from the trainer's own log.

    python benchmarks/bench_training.py                        # small presets, this device
    python benchmarks/bench_training.py --preset paper --steps 3 --warmup 1
    python benchmarks/bench_training.py --nets unet nafnet --workers 4 --json out.json
"""

from __future__ import annotations

import argparse
import csv
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from amsnet.config import ExperimentConfig, validate
from amsnet.data.folders import list_images
from amsnet.data.io import write_image
from amsnet.runtime import resolve_device
from amsnet.training import Trainer

DEFAULT_ROOT = Path(__file__).resolve().parents[2] / "shared" / "data" / "kodak24"

# (method, backbone, crop, batch, PD factor): the paper's recipes (AMSNet stage B: crop 160,
# batch 4, Restormer 2; AP-BSN: crop 120, batch 8).
RECIPES: list[tuple[str, str, int, int, int]] = [
    ("amsnet", "dncnn", 160, 4, 5),
    ("amsnet", "unet", 160, 4, 5),
    ("amsnet", "nafnet", 160, 4, 5),
    ("amsnet", "deamnet", 160, 4, 5),
    ("amsnet", "restormer", 160, 2, 5),
    ("apbsn", "dbsnl", 120, 8, 5),
]


class InMemoryCrops(Dataset):
    """``count`` random crops made beforehand; item ``i`` is crop ``i mod count``."""

    def __init__(self, crop: int, count: int = 64) -> None:
        generator = torch.Generator().manual_seed(0)
        self.crops = torch.rand(count, 3, crop, crop, generator=generator)

    def __len__(self) -> int:
        return len(self.crops)

    def __getitem__(self, index: int) -> torch.Tensor:
        return self.crops[index % len(self.crops)]


def image_folder(root: Path | None, scratch: Path) -> Path:
    """``root`` if it holds images, else eight 768x512 noisy PNGs written to ``scratch``."""
    if root is not None and root.is_dir() and list_images(root):
        return root
    generator = torch.Generator().manual_seed(0)
    for index in range(8):
        write_image(scratch / f"image{index}.png", torch.rand(3, 512, 768, generator=generator))
    return scratch


def experiment(
    method: str, net: str, preset: str, crop: int, batch: int, root: Path, args: argparse.Namespace
) -> ExperimentConfig:
    return validate(
        ExperimentConfig,
        {
            "experiment": {"name": f"{method}-{net}", "seed": 0},
            "method": {"name": method},
            "net": {"name": net, "preset": preset},
            "data": {
                "train": {
                    "kind": "noisy_folder",
                    "root": str(root),
                    "crop_size": crop,
                    "batch_size": batch,
                    "workers": args.workers,
                }
            },
            "train": {
                "steps": args.warmup + args.steps,
                "log_every": 1,
                "checkpoint_every": 10**9,
                "device": args.device,
                "tensorboard": False,
            },
        },
        "benchmark",
    )


def steady_rate(run_dir: Path, warmup: int) -> float:
    """Steps per second over the logged steps after ``warmup``."""
    with (run_dir / "log.csv").open(newline="") as handle:
        rows = [row for row in csv.DictReader(handle) if int(row["step"]) > warmup]
    seconds = sum(1.0 / float(row["steps_per_second"]) for row in rows)
    return len(rows) / seconds


def measure(config: ExperimentConfig, run_dir: Path, warmup: int, data: Dataset | None) -> float:
    Trainer(config, run_dir=run_dir, quiet=True, train_data=data).fit()
    return steady_rate(run_dir, warmup)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--preset", default="small", help="backbone preset (small, paper)")
    parser.add_argument("--nets", nargs="+", help="only these backbones")
    parser.add_argument("--steps", type=int, default=10, help="measured steps (default 10)")
    parser.add_argument("--warmup", type=int, default=3, help="unmeasured first steps")
    parser.add_argument("--workers", type=int, default=2, help="DataLoader workers (default 2)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT, help="folder of images")
    parser.add_argument("--threads", type=int, help="torch.set_num_threads (CPU)")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing --json")
    args = parser.parse_args(argv)
    if args.json is not None:
        from amsnet.atomic import check_new_output

        check_new_output(args.json, overwrite=args.overwrite, flag="--json")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    recipes = [r for r in RECIPES if args.nets is None or r[1] in args.nets]
    results: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as scratch:
        root = image_folder(args.root, Path(scratch) / "images")
        name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.machine()
        print(
            f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} "
            f"threads, preset {args.preset}, {len(list_images(root))} images in {root}, "
            f"{args.workers} workers, {args.warmup} + {args.steps} steps"
        )
        print(
            "| method | backbone | crop | batch | pipeline steps/s | in-memory steps/s | "
            "pipeline crops/s | in-memory crops/s | sub-images/s | pipeline / in-memory |\n"
            "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"
        )
        for method, net, crop, batch, factor in recipes:
            config = experiment(method, net, args.preset, crop, batch, root, args)
            runs = Path(scratch) / "runs" / f"{method}-{net}"
            pipeline = measure(config, runs / "pipeline", args.warmup, None)
            memory = measure(config, runs / "memory", args.warmup, InMemoryCrops(crop))
            row = {
                "method": method,
                "backbone": net,
                "preset": args.preset,
                "crop": crop,
                "batch": batch,
                "pipeline_steps_per_second": pipeline,
                "memory_steps_per_second": memory,
                "sub_images_per_second": memory * batch * factor**2,
            }
            results.append(row)
            print(
                f"| {method} | {net} | {crop} | {batch} | {pipeline:.2f} | {memory:.2f} | "
                f"{pipeline * batch:.1f} | {memory * batch:.1f} | "
                f"{row['sub_images_per_second']:.0f} | {pipeline / memory:.2f} |",
                flush=True,
            )
    if args.json:
        payload = {
            "device": str(device),
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": torch.get_num_threads(),
            "runs": results,
            "numpy": np.__version__,
        }
        from amsnet.atomic import atomic_write

        text = json.dumps(payload, indent=2)
        atomic_write(args.json, lambda tmp: tmp.write_text(text))
    return 0


if __name__ == "__main__":
    sys.exit(main())
