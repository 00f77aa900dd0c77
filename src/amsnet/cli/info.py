"""``amsnet info``: what a weights file holds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser("info", help="show the configuration stored in a weights file")
    parser.add_argument("weights", type=Path, help="a .safetensors file written by amsnet")
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.checkpoint import read_header

    print(json.dumps(read_header(args.weights), indent=2, sort_keys=True))
    return 0
