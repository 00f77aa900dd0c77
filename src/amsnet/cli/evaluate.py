"""``amsnet eval``: PSNR/SSIM of a weights file on a benchmark, with the published protocol."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amsnet.cli.options import add_precision_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    from amsnet.data.benchmarks import DATASETS

    parser = sub.add_parser(
        "eval",
        help="evaluate weights on a paired benchmark (PolyU, CC, SIDD validation, ...)",
        description=(
            "Denoise every image of a benchmark once per seed and write per-image and summary "
            "figures (PSNR and SSIM on 8-bit quantised images; SSIM in the official AMSNet "
            "'matlab' convention and AP-BSN's 'skimage' convention)."
        ),
    )
    parser.add_argument("weights", type=Path, help=".safetensors written by amsnet")
    parser.add_argument("--dataset", required=True, choices=DATASETS)
    parser.add_argument("--root", type=Path, required=True, help="the dataset folder")
    parser.add_argument("--clean-root", type=Path, help="clean images for --dataset folders")
    parser.add_argument(
        "--sigma", type=float, nargs="+", help="AWGN sigma(s) on the 0-255 scale (awgn)"
    )
    parser.add_argument("--level", choices=["low", "medium", "high"], help="camera noise level")
    parser.add_argument("--noise-seed", type=int, default=0, help="seed of synthetic noise")
    parser.add_argument(
        "--variant",
        choices=["B", "P", "E"],
        default="B",
        help="E = with R3 refinement; B and P run without it (P is a property of the weights)",
    )
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="mask / R3 seeds")
    parser.add_argument("--limit", type=int, help="evaluate at most this many images")
    parser.add_argument(
        "--ensemble",
        type=int,
        default=1,
        metavar="N",
        help="average each result over N flips and rotations (1-8; the report says so)",
    )
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(parser)
    parser.add_argument("--out", type=Path, help="folder for results.csv, results.json, images")
    parser.add_argument("--save-outputs", action="store_true", help="write denoised images")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results in --out")
    parser.add_argument(
        "--trained-on-test",
        action="store_true",
        help="record that the model was trained on these noisy images",
    )
    parser.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="sidd-val: accept other numbers and sizes of blocks than the published ones",
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.atomic import check_output_folder
    from amsnet.data.benchmarks import load_pairs
    from amsnet.errors import ConfigError
    from amsnet.evaluate import evaluate
    from amsnet.inference import load_for_inference

    if args.limit is not None and args.limit < 1:
        raise ConfigError(f"--limit must be at least 1 image, got {args.limit}")
    from amsnet.ops.dihedral import check_transform_count

    check_transform_count(args.ensemble, "--ensemble")
    if args.save_outputs and args.out is None:
        raise ConfigError("--save-outputs writes into --out: give --out FOLDER")
    # One evaluation per AWGN sigma (a list is the usual protocol: 10, 25, 50, ...).
    sigmas = args.sigma if args.sigma else [None]
    folders = {s: _results_folder(args.out, args.dataset, s, len(sigmas)) for s in sigmas}
    written = ["results.csv", "results.json"] + (["images"] if args.save_outputs else [])
    for out in folders.values():
        if out is not None:
            check_output_folder(out, written, overwrite=args.overwrite, flag="--out")
    method = load_for_inference(args.weights, args.device, args.precision)
    device = next(method.parameters()).device
    for sigma in sigmas:
        name = args.dataset if sigma is None else f"{args.dataset}-sigma{sigma:g}"
        out = folders[sigma]
        pairs = load_pairs(
            args.dataset,
            args.root,
            clean_root=args.clean_root,
            sigma=sigma,
            level=args.level,
            seed=args.noise_seed,
            limit=args.limit,
            strict=args.strict,
        )

        def progress(index: int, image: str) -> None:
            print(f"\r{index + 1} images ({image})", end="", file=sys.stderr, flush=True)

        report = evaluate(
            method,
            pairs,
            dataset=name,
            seeds=args.seeds,
            refine=args.variant == "E",
            device=device,
            trained_on_test_images=args.trained_on_test,
            weights=str(args.weights),
            save_dir=(out / "images") if args.save_outputs and out else None,
            progress=progress,
            variant=args.variant,
            ensemble=args.ensemble,
        )
        report.protocol = _protocol(args, sigma, report.summary()["images"])
        print(file=sys.stderr)
        print(report.to_markdown())
        if out:
            report.to_csv(out / "results.csv")
            report.to_json(out / "results.json")
            print(f"wrote {out / 'results.csv'} and {out / 'results.json'}")
    return 0


def _protocol(args: argparse.Namespace, sigma: float | None, images: int) -> str:
    """The report's protocol label, with the setting that changes the figures."""
    from amsnet.data.protocols import protocol_for
    from amsnet.data.sidd import SIDD_BLOCKS_SHAPE

    detail = None
    if args.dataset == "sidd-val":
        total = SIDD_BLOCKS_SHAPE[0] * SIDD_BLOCKS_SHAPE[1]
        if not args.strict:
            detail = f"{images} blocks of a file of another size (--no-strict)"
        elif images != total:
            detail = f"{images} of {total} blocks"
    elif args.dataset == "awgn":
        detail = f"sigma {sigma:g}"
    elif args.dataset == "camera" and args.level:
        detail = f"level {args.level}"
    return protocol_for(args.dataset, detail=detail)


def _results_folder(out: Path | None, dataset: str, sigma: float | None, count: int) -> Path | None:
    """``--out`` itself, or one subfolder per sigma when several are evaluated."""
    if out is None or count == 1:
        return out
    return out / f"{dataset}-sigma{sigma:g}"
