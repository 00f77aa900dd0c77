"""``amsnet serve``: the local web page (:mod:`amsnet.serve`)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from amsnet.cli.options import add_precision_argument


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "serve",
        help="a local web page: drop photos, compare, download",
        description=(
            "Serve a page on this computer where photos are dropped, denoised one at a time "
            "(tiled as in amsnet denoise), compared with a before/after slider at 100%% zoom, "
            "given a no-reference quality report, and downloaded in their own format."
        ),
    )
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--model", help="the shipped model chosen first (default: the default)")
    source.add_argument("--weights", type=Path, help="your own .safetensors, offered first")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (loopback)")
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    add_precision_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seeds the masks")
    parser.add_argument(
        "--max-upload-mb", type=float, default=256, help="largest upload in MiB (default 256)"
    )
    parser.add_argument(
        "--max-megapixels", type=float, default=60, help="largest photo (default 60)"
    )
    parser.set_defaults(run=run)


def run(args: argparse.Namespace) -> int:
    from amsnet.errors import ConfigError
    from amsnet.serve import JobQueue, LocalServer, LOOPBACK, offered_models, ServeLimits

    if args.max_upload_mb <= 0 or args.max_megapixels <= 0:
        raise ConfigError("--max-upload-mb and --max-megapixels must be positive")
    limits = ServeLimits(
        max_upload_bytes=int(args.max_upload_mb * 2**20),
        max_pixels=int(args.max_megapixels * 1e6),
    )
    weights = str(args.weights) if args.weights is not None else None
    jobs = JobQueue(
        offered_models(args.model, weights),
        limits=limits,
        device=args.device,
        precision=args.precision,
        seed=args.seed,
    )
    try:
        jobs.preload()
        server = LocalServer(jobs, args.host, args.port)
        address = server.start()
    except ConfigError:
        jobs.close()
        raise
    if args.host not in LOOPBACK:
        print(
            f"warning: listening on {args.host}: anyone who can reach this computer can use "
            "the page",
            file=sys.stderr,
        )
    print(f"amsnet serve: open {address} (Ctrl-C stops)", flush=True)
    server.wait()
    return 0
