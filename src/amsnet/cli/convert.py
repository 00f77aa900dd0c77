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
    parser.add_argument(
        "--overwrite", "--force", action="store_true", help="replace an existing output"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.atomic import check_new_output
    from amsnet.checkpoint import save_pretrained
    from amsnet.compat.official import convert_official

    output = check_new_output(args.output, overwrite=args.overwrite, inputs=[args.checkpoint])
    model = convert_official(args.checkpoint, backbone=args.backbone, method=args.method)
    save_pretrained(model, output, source=f"converted from {args.checkpoint.name}")
    name = model.backbone.net_config["name"]
    count = sum(p.numel() for p in model.parameters())
    print(f"wrote {output} ({type(model).__name__} with {name}, {count:,} parameters)")
    return 0
