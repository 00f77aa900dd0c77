"""``amsnet demo``: the embedded default job (what ``make demo`` runs)."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="noisy photos with ground truth: the shipped models vs BM3D, with a report",
        description=(
            "Denoises photos whose clean version is known (CC15's real camera noise where "
            "../shared/data/cc15 is present, else scikit-image's photographs with synthetic "
            "camera noise) with the shipped models (the default student, its AMSNet teacher "
            "with R3, AP-BSN with R3, the student adapted to the photos) and BM3D, and writes "
            "results.csv, comparison.png and report.html."
        ),
    )
    parser.add_argument(
        "--photos",
        choices=["auto", "cc15", "synthetic"],
        default="auto",
        help="cc15: real camera noise from --data/cc15; synthetic: scikit-image photos with "
        "synthetic camera noise (--level); auto: cc15 when present (default)",
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=Path("../shared/data"),
        help="the folder that holds cc15/ (default ../shared/data)",
    )
    parser.add_argument("--output", type=Path, default=Path("demo_output"))
    parser.add_argument(
        "--adapt-steps",
        type=int,
        default=300,
        help="steps of the student's adaptation to the photos (0: none)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument(
        "--level",
        choices=["low", "medium", "high"],
        default="medium",
        help="synthetic noise level (--photos synthetic)",
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier demo's results in --output"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.runtime import tune_cpu_allocator
    from amsnet.studies.demo import run_demo

    tune_cpu_allocator()
    rows = run_demo(
        args.output,
        adapt_steps=args.adapt_steps,
        seed=args.seed,
        level=args.level,
        device=args.device,
        overwrite=args.overwrite,
        photos=args.photos,
        data=args.data,
    )
    print("\n| method | PSNR (dB) | SSIM (matlab) | SSIM (skimage) |\n|---|---:|---:|---:|")
    for row in rows:
        if row.image == "mean":
            print(
                f"| {row.method} | {row.psnr:.2f} | {row.ssim_matlab:.4f} | "
                f"{row.ssim_skimage:.4f} |"
            )
    return 0
