"""``amsnet export``: a model as one ONNX graph that denoises a whole image (docs/onnx.md)."""

from __future__ import annotations

import argparse
import time
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "export",
        help="export a model to ONNX (one graph: padding, PD, all masked branches, stitching)",
        description=(
            "Write MODEL (a shipped model's name or a .safetensors file) as an ONNX file whose "
            "one call denoises a whole image of any height and width. An AMSNet's masks are "
            "keyed to the pixel positions and --seed inside the graph, so the result equals "
            "amsnet denoise with that seed; run it with amsnet denoise --weights FILE.onnx."
        ),
    )
    parser.add_argument("model", help="a shipped model (amsnet models) or a .safetensors file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="the .onnx file")
    parser.add_argument(
        "--variant",
        choices=["B", "E"],
        default="B",
        help="E = with R3 inside the graph (models with masks; about 9x the cost of B)",
    )
    parser.add_argument("--seed", type=int, default=0, help="the masks' key, fixed in the graph")
    parser.add_argument("--opset", type=int, help="ONNX opset (default and minimum: 18)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.atomic import check_new_output
    from amsnet.errors import ConfigError
    from amsnet.onnx_export import DEFAULT_OPSET, export_onnx
    from amsnet.zoo import model_path

    if args.output.suffix.lower() != ".onnx":
        raise ConfigError(f"-o {args.output} should end in .onnx")
    check_new_output(args.output, overwrite=args.overwrite)  # before the minutes of tracing
    if not Path(args.model).exists() and Path(args.model).suffix != ".safetensors":
        model_path(args.model)  # an unknown name lists the shipped models
    start = time.perf_counter()
    path = export_onnx(
        args.model,
        args.output,
        variant=args.variant,
        seed=args.seed,
        opset=args.opset or DEFAULT_OPSET,
        overwrite=args.overwrite,
    )
    seconds = time.perf_counter() - start
    size = path.stat().st_size / 2**20
    print(f"exported {args.model} (variant {args.variant}, seed {args.seed}) to {path}")
    print(
        f"  {size:.1f} MiB, {seconds:.1f} s; run it: amsnet denoise PHOTOS -o OUT --weights {path}"
    )
    return 0
