"""Inference speed of this checkout against an earlier commit, side by side in one run.

    python benchmarks/bench_against_commit.py --ref 43dd41e --rounds 3 --repeats 9

``--ref`` is checked out into a temporary git worktree (removed at the end). Each round starts
one fresh process per side, the reference first, then this checkout, so that the two
alternate and a machine that gets busier slows both. A process imports ``amsnet`` from its
own ``src/``, loads each model with ``amsnet.inference.load_for_inference(name, "cpu")``
(each side's own weights and its own inference preparation: allocator thresholds, memory
layout, fused kernels), and times ``method.denoise`` on one ``--size`` x ``--size`` image:
AMSNet B for a model with masks, the single pass for the student; the median of
``--repeats`` calls after a warm-up. Both sides run in fp32 with the same thread count, unless
``--precision`` names another precision for this checkout (``auto``: what ``amsnet denoise``
would choose, e.g. bfloat16 for the shipped NAFNets on a CPU with native bfloat16; the
reference stays in fp32). The largest difference between the two sides' outputs is printed as
well: a speed-up that changed the result would show there.

Used for issue 16's "faster than today" target: 43dd41e is the last commit before that work.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPOSITORY = Path(__file__).resolve().parents[1]


def _child(args: argparse.Namespace) -> int:
    # Imported here: the parent must not import this checkout's amsnet, the child imports
    # whichever tree PYTHONPATH names.
    import inspect
    import time

    import numpy as np
    import torch

    import amsnet
    from amsnet.inference import load_for_inference

    # A commit from before the precision setting runs in fp32 and takes no such argument.
    takes_precision = "precision" in inspect.signature(load_for_inference).parameters
    options = {"precision": args.precision} if takes_precision else {}

    torch.set_num_threads(args.threads)
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, args.size, args.size, generator=generator)
    report: dict[str, float] = {}
    outputs: dict[str, np.ndarray] = {}
    with torch.no_grad():
        for name in args.models:
            method = load_for_inference(name, "cpu", **options)
            method.denoise(image)
            times = []
            for _ in range(args.repeats):
                start = time.perf_counter()
                method.denoise(image)
                times.append(time.perf_counter() - start)
            report[name] = statistics.median(times) * 1e3
            outputs[name] = method.denoise(image).numpy()
    np.savez(args.child, **outputs)
    print(json.dumps({"amsnet": amsnet.__file__, "ms": report}))
    return 0


def _run_side(
    tree: Path, args: argparse.Namespace, output: Path, precision: str
) -> dict[str, float]:
    environment = dict(os.environ, PYTHONPATH=str(tree / "src"))
    command = [
        sys.executable,
        __file__,
        "--child",
        str(output),
        "--size",
        str(args.size),
        "--repeats",
        str(args.repeats),
        "--threads",
        str(args.threads),
        "--precision",
        precision,
        "--models",
        *args.models,
    ]
    done = subprocess.run(
        command, env=environment, capture_output=True, text=True, check=False, cwd=tree
    )
    if done.returncode != 0:
        raise SystemExit(f"the side in {tree} failed:\n{done.stderr[-3000:]}")
    report = json.loads(done.stdout.strip().splitlines()[-1])
    if not report["amsnet"].startswith(str(tree)):
        raise SystemExit(f"the side in {tree} imported {report['amsnet']}; is amsnet installed?")
    return report["ms"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ref", default="43dd41e", help="the earlier commit (default 43dd41e)")
    parser.add_argument("--models", nargs="+", default=["amsnet-nafnet-p", "student-nafnet"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--precision",
        default="fp32",
        choices=["auto", "fp32", "bf16", "fp16"],
        help="this checkout's backbone precision (the reference runs in fp32)",
    )
    parser.add_argument("--child", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is not None:
        return _child(args)
    import numpy as np

    with tempfile.TemporaryDirectory(prefix="amsnet-ref-") as scratch:
        reference = Path(scratch) / "tree"
        subprocess.run(
            ["git", "-C", str(REPOSITORY), "worktree", "add", "--detach", str(reference), args.ref],
            check=True,
            capture_output=True,
        )
        try:
            times: dict[str, dict[str, list[float]]] = {
                name: {"ref": [], "now": []} for name in args.models
            }
            for _ in range(args.rounds):
                for side, tree in (("ref", reference), ("now", REPOSITORY)):
                    precision = "fp32" if side == "ref" else args.precision
                    output = Path(scratch) / f"{side}.npz"
                    for name, ms in _run_side(tree, args, output, precision).items():
                        times[name][side].append(ms)
            ref_out, now_out = (np.load(Path(scratch) / f"{s}.npz") for s in ("ref", "now"))
            print(
                f"{args.size}x{args.size}, {args.threads} threads, {args.ref} (fp32) against "
                f"this checkout ({args.precision}), ms (median of {args.repeats}) per round:"
            )
            for name in args.models:
                before, after = times[name]["ref"], times[name]["now"]
                speed_up = statistics.median(before) / statistics.median(after)
                difference = float(np.abs(ref_out[name] - now_out[name]).max())
                print(
                    f"  {name}: {' / '.join(f'{t:.1f}' for t in before)} -> "
                    f"{' / '.join(f'{t:.1f}' for t in after)}  ({speed_up:.2f}x; largest "
                    f"output difference {difference:.1e})"
                )
        finally:
            subprocess.run(
                ["git", "-C", str(REPOSITORY), "worktree", "remove", "--force", str(reference)],
                check=False,
                capture_output=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
