"""``amsnet convert``: official AMSNet / AP-BSN checkpoints to amsnet ``.safetensors``."""

from __future__ import annotations

import argparse
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "convert",
        help="convert an official AMSNet .ckpt or AP-BSN .pth to .safetensors",
        description=(
            "Read an official checkpoint (tensors only, weights_only=True), recognise its "
            "backbone, and write amsnet weights with the model configuration in the header."
        ),
    )
    parser.add_argument("checkpoint", type=Path, help="official .ckpt / .pth file")
    parser.add_argument("-o", "--output", type=Path, required=True, help="output .safetensors")
    parser.add_argument("--backbone", help="backbone name (default: recognised from the keys)")
    parser.add_argument(
        "--method", choices=["amsnet", "apbsn"], help="method (default: from the checkpoint)"
    )
    parser.add_argument("--force", action="store_true", help="overwrite an existing output")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.checkpoint import save_pretrained
    from amsnet.compat.official import convert_official
    from amsnet.errors import CheckpointError

    output: Path = args.output
    if output.resolve() == args.checkpoint.resolve():
        raise CheckpointError("the output would overwrite the input checkpoint; choose another -o")
    if output.exists() and not args.force:
        raise CheckpointError(f"{output} exists; pass --force to overwrite it")
    model = convert_official(args.checkpoint, backbone=args.backbone, method=args.method)
    save_pretrained(model, output, source=f"converted from {args.checkpoint.name}")
    name = model.backbone.net_config["name"]
    count = sum(p.numel() for p in model.parameters())
    print(f"wrote {output} ({type(model).__name__} with {name}, {count:,} parameters)")
    return 0
