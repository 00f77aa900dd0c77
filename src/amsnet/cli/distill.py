"""``amsnet distill``: a one-pass student from a teacher with masks, on folders of noisy
images."""

from __future__ import annotations

import argparse
from pathlib import Path

from amsnet.cli.options import add_overrides_argument, add_precision_argument, PRECISION_HELP
from amsnet.config import PRECISIONS


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "distill",
        help="distil a teacher (AMSNet, AP-BSN) into a one-pass student",
        description=(
            "The teacher denoises --regions regions of the noisy images in --data once "
            "(variant E: with R3; cached under --cache-dir, so a rerun or --resume reuses "
            "them), then a plain network learns to reproduce those outputs in one pass. "
            "Checkpoints go to --out; the student's weights, with a model card in the header, "
            "to -o."
        ),
    )
    parser.add_argument("teacher", help="shipped model name (amsnet models) or .safetensors")
    parser.add_argument(
        "--data", nargs="+", required=True, type=Path, help="folders of noisy images"
    )
    parser.add_argument(
        "--include",
        nargs="+",
        metavar="GLOB",
        help="keep images matching these globs, relative to each --data folder "
        "(e.g. '*_Real.JPG'; default: all images)",
    )
    parser.add_argument("-o", "--output", type=Path, required=True, help="student .safetensors")
    parser.add_argument("--net", default="nafnet", help="student backbone (amsnet nets)")
    parser.add_argument("--preset", default="small", help="its preset ('' for none)")
    parser.add_argument("--steps", type=_positive, default=4000, help="student steps")
    parser.add_argument("--regions", type=_positive, default=1024, help="teacher regions")
    parser.add_argument("--region-size", type=_positive, default=192, help="region side (px)")
    parser.add_argument("--crop", type=_positive, default=96, help="student crop side (px)")
    parser.add_argument(
        "--downscale",
        type=_positive,
        nargs="+",
        default=[1],
        metavar="F",
        help="box-downscaling factors the crops draw from (e.g. 1 1 2 3: half at full size; "
        "--region-size must hold --crop x the largest)",
    )
    parser.add_argument(
        "--noise-scale",
        type=_noise_scale,
        nargs="+",
        default=[1.0],
        metavar="S",
        help="noise strengths the crops draw from, each in [0, 1] (e.g. 1 1 0.6 0.3: half "
        "as they are; S keeps S of the teacher's residual)",
    )
    parser.add_argument("--batch", type=_positive, default=8, help="crops per step")
    parser.add_argument("--lr", type=float, default=5e-4, help="peak learning rate")
    parser.add_argument(
        "--variant", choices=["B", "E"], default="E", help="teacher output to learn (E: R3)"
    )
    parser.add_argument(
        "--init",
        choices=["auto", "teacher", "random"],
        default="auto",
        help="student's start: the teacher's weights (auto: when the networks match)",
    )
    parser.add_argument("--seed", type=int, default=0, help="seeds regions, crops, weights")
    parser.add_argument(
        "--cache-dir", type=Path, default=Path("runs/cache/distill"), help="teacher outputs"
    )
    parser.add_argument("--out", type=Path, help="run folder (default: runs/distill)")
    parser.add_argument("--resume", action="store_true", help="continue the run in --out")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing -o")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(parser, help=f"the student's backbone: {PRECISION_HELP}")
    parser.add_argument(
        "--teacher-precision",
        type=str.lower,
        choices=PRECISIONS,
        default="fp32",
        help="the teacher's backbone while it makes the cached targets (default fp32)",
    )
    add_overrides_argument(
        parser, example="an experiment setting, e.g. --set train.optimizer.lr=1e-4"
    )
    parser.add_argument("--quiet", action="store_true", help="no progress bar")
    parser.set_defaults(run=run)


def _positive(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {value}")
    return value


def _noise_scale(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must lie between 0 and 1, got {value}")
    return value


def run(args: argparse.Namespace) -> int:
    from amsnet.api import distill
    from amsnet.errors import ConfigError

    if not args.lr > 0:
        raise ConfigError(f"--lr must be positive, got {args.lr}")
    path = distill(
        args.teacher,
        args.data,
        args.output,
        include=args.include,
        run_dir=args.out,
        resume=args.resume,
        overwrite=args.overwrite,
        device=args.device,
        quiet=args.quiet,
        overrides=args.overrides,
        net=args.net,
        preset=args.preset or None,
        precision=args.precision,
        teacher_precision=args.teacher_precision,
        steps=args.steps,
        regions=args.regions,
        region_size=args.region_size,
        crop_size=args.crop,
        downscale_factors=args.downscale,
        noise_scales=args.noise_scale,
        batch_size=args.batch,
        lr=args.lr,
        teacher_variant=args.variant,
        init_from_teacher={"auto": None, "teacher": True, "random": False}[args.init],
        seed=args.seed,
        cache_dir=args.cache_dir,
    )
    print(f"student: {path}")
    return 0
