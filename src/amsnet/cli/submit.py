"""``amsnet submit``: the SIDD benchmark and DND submission files."""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

from amsnet.cli.options import add_precision_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "submit",
        help="write SIDD benchmark (SubmitSrgb.mat) or DND submission files",
        description=(
            "Denoise the benchmark's noisy data and write the files its server expects: "
            "sidd-bench -> SubmitSrgb.mat (DenoisedBlocksSrgb 40x32 cells, TimeMPSrgb); "
            "dnd -> one %%04d_%%02d.mat per box and the bundled %%04d.mat files to upload."
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
        "--format", choices=["v5", "v7.3"], default="v5", help="MATLAB format of SubmitSrgb.mat"
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
    from amsnet.data.io import to_uint8
    from amsnet.inference import load_for_inference

    benchmark_files = [p for p in args.root.rglob("*") if p.is_file()] if args.root.is_dir() else []
    if args.benchmark == "sidd-bench":
        check_new_output(
            args.output, overwrite=args.overwrite, inputs=[args.weights, *benchmark_files]
        )
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
        write_sidd_submission(
            args.output,
            out,
            seconds_per_megapixel(seconds, pixels),
            optional_data={"MethodName": f"amsnet ({method.method_config()['name']})"},
            mat_format=args.format,
            strict=args.strict,
        )
        print(f"wrote {args.output}")
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
    return 0
