"""``amsnet submit``: the SIDD benchmark and DND submission files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from amsnet.cli.options import add_precision_argument

MAT_VERSIONS = ("v5", "v7.3")


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "submit",
        help="write SIDD benchmark (Kaggle CSV or SubmitSrgb.mat) or DND submission files",
        description=(
            "Denoise the benchmark's noisy data and write the files its server expects: "
            "sidd-bench -> SubmitSrgb.mat (DenoisedBlocksSrgb 40x32 cells, TimeMPSrgb) for the "
            "original SIDD server (closed), or with --format kaggle SubmitSrgb.csv for the "
            "Kaggle board that replaced it (its SSIM is not comparable with the old server's); "
            "dnd -> one %04d_%02d.mat per box and the bundled %04d.mat files to upload."
        ),
    )
    parser.add_argument("benchmark", choices=["sidd-bench", "dnd"])
    parser.add_argument("weights", type=Path, help=".safetensors written by amsnet")
    parser.add_argument("--root", type=Path, required=True, help="the benchmark's folder")
    parser.add_argument("-o", "--output", type=Path, required=True, help="file or folder")
    parser.add_argument("--variant", choices=["B", "P", "E"], default="E", help="E = with R3")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="auto")
    add_precision_argument(parser)
    parser.add_argument(
        "--format",
        choices=["mat", "kaggle", *MAT_VERSIONS],
        default="mat",
        help=(
            "sidd-bench: mat (SubmitSrgb.mat, the old server's) or kaggle (SubmitSrgb.csv, the "
            "Kaggle board's); v5 and v7.3, the earlier spelling, mean mat in that version"
        ),
    )
    parser.add_argument(
        "--mat-version",
        choices=MAT_VERSIONS,
        help="MATLAB version of SubmitSrgb.mat (default v5)",
    )
    parser.add_argument(
        "--no-strict",
        dest="strict",
        action="store_false",
        help="accept other numbers and sizes of blocks / boxes than the published ones",
    )
    parser.add_argument(
        "--overwrite", action="store_true", help="replace an earlier submission in -o"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    import numpy as np
    import torch

    from amsnet.atomic import check_new_output, check_output_folder
    from amsnet.data.images import to_uint8
    from amsnet.data.protocols import protocol_for
    from amsnet.errors import ConfigError
    from amsnet.inference import load_for_inference

    benchmark_files = [p for p in args.root.rglob("*") if p.is_file()] if args.root.is_dir() else []
    if args.benchmark == "sidd-bench":
        file_format, mat_version = _sidd_format(args)
        check_new_output(
            args.output, overwrite=args.overwrite, inputs=[args.weights, *benchmark_files]
        )
    elif args.format != "mat" or args.mat_version is not None:
        raise ConfigError("--format and --mat-version are for sidd-bench; dnd has one format")
    method = load_for_inference(args.weights, args.device, args.precision)
    device = next(method.parameters()).device
    generator = torch.Generator(device=device).manual_seed(args.seed)
    refine = args.variant == "E"

    def denoise(noisy: torch.Tensor) -> torch.Tensor:
        return method.denoise(noisy[None].to(device), generator=generator, refine=refine)[0].cpu()

    if args.benchmark == "sidd-bench":
        from amsnet.data.sidd import (
            read_sidd_benchmark,
            seconds_per_megapixel,
            write_sidd_submission,
        )
        from amsnet.data.sidd_kaggle import KAGGLE_COMPETITIONS, write_kaggle_submission

        blocks = read_sidd_benchmark(args.root, strict=args.strict)
        out = np.empty(blocks.noisy.shape, dtype=np.uint8)
        start = time.perf_counter()
        for index, noisy, _ in blocks.tensors():
            image, block = blocks.position(index)
            out[image, block] = to_uint8(denoise(noisy))
            print(f"\r{index + 1}/{len(blocks)} blocks", end="", file=sys.stderr, flush=True)
        seconds = time.perf_counter() - start
        print(file=sys.stderr)
        pixels = int(np.prod(out.shape[:4]))
        per_megapixel = seconds_per_megapixel(seconds, pixels)
        if file_format == "kaggle":
            # The writer reads the file back (header, IDs, every block equal to `out`)
            # before it takes its name, so "wrote" below means "checked".
            write_kaggle_submission(args.output, out, strict=args.strict)
            print(
                f"wrote {args.output}: {len(blocks)} blocks, checked (header ID,BLOCK, IDs in "
                f"order, each block {out.shape[2]}x{out.shape[3]}x3 uint8 as denoised); "
                f"{per_megapixel:.3f} s per megapixel (not part of the CSV)"
            )
            boards = " and ".join(f"kaggle.com/competitions/{c}" for c in KAGGLE_COMPETITIONS)
            print(f"upload it at {boards}")
            protocol = protocol_for("sidd-bench-kaggle")
        else:
            write_sidd_submission(
                args.output,
                out,
                per_megapixel,
                optional_data={"MethodName": f"amsnet ({method.method_config()['name']})"},
                mat_format=mat_version,
                strict=args.strict,
            )
            print(f"wrote {args.output} (MATLAB {mat_version})")
            protocol = protocol_for("sidd-bench-mat")
        print(f"protocol of the figures it gets: {protocol}")
        return 0

    from amsnet.data.dnd import bundle_dnd_submission, read_dnd, write_dnd_box

    benchmark = read_dnd(args.root, strict=args.strict)
    images, boxes = benchmark.num_images, benchmark.boxes_per_image
    numbers = range(1, images + 1)
    written = [f"{i:04d}_{b:02d}.mat" for i in numbers for b in range(1, boxes + 1)]
    written += [f"bundled/{i:04d}.mat" for i in numbers]
    check_output_folder(
        args.output,
        written,
        overwrite=args.overwrite,
        inputs=[args.weights, *benchmark_files],
    )
    count = 0
    for crop in benchmark.tensors():
        image_index, box_index, noisy = crop
        write_dnd_box(args.output, image_index, box_index, denoise(noisy), strict=args.strict)
        count += 1
        print(f"\r{count} boxes", end="", file=sys.stderr, flush=True)
    print(file=sys.stderr)
    bundled = bundle_dnd_submission(
        args.output,
        images=images,
        boxes=boxes,
        crop_size=None if not args.strict else (512, 512),
    )
    print(
        f"wrote {count} boxes to {args.output}; upload the {len(bundled)} files in "
        f"{bundled[0].parent}"
    )
    print(f"protocol of the figures it gets: {protocol_for('dnd')}")
    return 0


def _sidd_format(args: argparse.Namespace) -> tuple[str, str]:
    """``(format, MATLAB version)`` from ``--format`` / ``--mat-version``, checked against
    each other and against the suffix of ``-o`` before any work starts."""
    from amsnet.errors import ConfigError

    legacy = args.format in MAT_VERSIONS
    file_format = "mat" if legacy else args.format
    if file_format == "kaggle" and args.mat_version is not None:
        raise ConfigError("--mat-version is for --format mat; the Kaggle CSV has no version")
    if legacy and args.mat_version not in (None, args.format):
        raise ConfigError(
            f"--format {args.format} and --mat-version {args.mat_version} disagree; give "
            f"--format mat --mat-version {args.mat_version}"
        )
    mat_version = args.format if legacy else (args.mat_version or "v5")
    suffix = args.output.suffix.lower()
    wrong = {"kaggle": ".mat", "mat": ".csv"}[file_format]
    if suffix == wrong:
        right = {"kaggle": ".csv", "mat": ".mat"}[file_format]
        other = {"kaggle": "mat", "mat": "kaggle"}[file_format]
        raise ConfigError(
            f"-o {args.output} names a {wrong} file but --format is {file_format}; "
            f"write -o {args.output.with_suffix(right)} or pass --format {other}"
        )
    return file_format, mat_version
