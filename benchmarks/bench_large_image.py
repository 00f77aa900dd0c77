"""Denoise a 6000x4000 photo through ``amsnet denoise`` and report time and peak memory.

The claim it checks (issue 5): on 2 CPU cores the paper's UNet preset denoises a 24-megapixel
photo in bounded memory (peak resident size at most 2 GiB) thanks to tiling. The weights are
random (speed and memory do not depend on them); the photo is a synthetic 8-bit PNG.

    python benchmarks/bench_large_image.py                  # UNet paper preset, variant B
    python benchmarks/bench_large_image.py --variant E --net nafnet --size 3000 2000
    python benchmarks/bench_large_image.py --model student-nafnet   # a shipped model

The denoising runs in a child process so that its peak resident size (``ru_maxrss``) is its
own, file decoding and encoding included.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np


def make_photo(path: Path, width: int, height: int, seed: int = 0) -> None:
    """A smooth colour image with noise, written as an 8-bit PNG, built band by band."""
    from amsnet.data.io import write_image

    rng = np.random.default_rng(seed)
    y = np.linspace(0, 8 * np.pi, height, dtype=np.float32)[:, None]
    x = np.linspace(0, 12 * np.pi, width, dtype=np.float32)[None, :]
    image = np.empty((height, width, 3), dtype=np.uint8)
    for top in range(0, height, 500):
        rows = y[top : top + 500]
        base = [0.5 + 0.3 * np.sin(rows * (c + 1) * 0.7 + x * (3 - c) * 0.5) for c in range(3)]
        band = np.stack(base, axis=-1) + rng.normal(0, 0.03, (rows.shape[0], width, 3))
        image[top : top + 500] = np.clip(band * 255 + 0.5, 0, 255).astype(np.uint8)
    write_image(path, image, overwrite=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=(6000, 4000), metavar=("W", "H"))
    parser.add_argument("--net", default="unet")
    parser.add_argument("--preset", default="paper")
    parser.add_argument("--variant", choices=["B", "E"], default="B")
    parser.add_argument("--tile", default="auto")
    parser.add_argument("--max-memory", type=float, help="GiB per tile (default: amsnet's)")
    parser.add_argument("--model", help="a shipped model instead of random --net weights")
    parser.add_argument(
        "--precision", default="auto", help="the backbone's precision (auto, fp32, bf16, fp16)"
    )
    args = parser.parse_args(argv)

    from amsnet.checkpoint import save_pretrained
    from amsnet.methods import AMSNet
    from amsnet.nets import create_net

    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        photo = work / "photo.png"
        tic = time.perf_counter()
        make_photo(photo, *args.size)
        print(f"made a {args.size[0]}x{args.size[1]} PNG in {time.perf_counter() - tic:.0f} s")
        if args.model:
            chosen = ["--model", args.model]
            label = args.model
        else:
            weights = save_pretrained(
                AMSNet(create_net(args.net, preset=args.preset)), work / "model.safetensors"
            )
            chosen = ["--weights", str(weights)]
            label = f"{args.net} ({args.preset})"
        command = [
            sys.executable,
            "-m",
            "amsnet",
            "denoise",
            str(photo),
            "-o",
            str(work / "out"),
            *chosen,
            "--variant",
            args.variant,
            "--device",
            "cpu",
            "--tile",
            args.tile,
            "--precision",
            args.precision,
            "--quiet",
        ]
        if args.max_memory:
            command += ["--max-memory", str(args.max_memory)]
        tic = time.perf_counter()
        done = subprocess.run(command, capture_output=True, text=True)
        seconds = time.perf_counter() - tic
        print(done.stdout.strip())
        if done.returncode:
            print(done.stderr, file=sys.stderr)
            return done.returncode
        peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 2**20
        megapixels = args.size[0] * args.size[1] / 1e6
        print(
            f"\n{label} variant {args.variant}, precision {args.precision}: {seconds:.0f} s for "
            f"{megapixels:.0f} MP ({seconds / megapixels:.1f} s/MP), peak resident memory "
            f"{peak:.2f} GiB (file reading and writing included)"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
