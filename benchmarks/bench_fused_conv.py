"""The fused oneDNN convolutions of ``amsnet.ops.fused_conv`` against the plain composition,
in the shipped NAFNet models, alternating the two in one run.

    python benchmarks/bench_fused_conv.py --rounds 3 --repeats 9

Each round times ``method.denoise`` (AMSNet B for the teacher, one pass for the student) on a
512x512 image in fp32 on the CPU, median of ``--repeats`` after a warm-up, first with fusion
switched off, then on; the maximum difference of the two outputs is printed too.
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch

from amsnet.inference import load_for_inference
from amsnet.ops import fused_conv
from amsnet.runtime import tune_cpu_allocator


def _median_ms(function, repeats: int) -> float:
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["amsnet-nafnet-p", "student-nafnet"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=9)
    args = parser.parse_args(argv)
    tune_cpu_allocator()
    available = fused_conv._HAS_FUSED_KERNELS
    image = torch.rand(1, 3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, fused kernels: {available}"
    )
    for name in args.models:
        method = load_for_inference(name, "cpu", "fp32")
        times: dict[bool, list[float]] = {False: [], True: []}
        outputs = {}
        with torch.no_grad():
            for _ in range(args.rounds):
                for fused in (False, True):
                    fused_conv._HAS_FUSED_KERNELS = available and fused
                    times[fused].append(_median_ms(lambda m=method: m.denoise(image), args.repeats))
                    outputs[fused] = method.denoise(image)
        fused_conv._HAS_FUSED_KERNELS = available
        plain, fused = (" / ".join(f"{t:.1f}" for t in times[f]) for f in (False, True))
        change = statistics.median(times[True]) / statistics.median(times[False]) - 1
        difference = (outputs[True] - outputs[False]).abs().max().item()
        print(
            f"{name} {args.size}x{args.size}: plain {plain} ms, fused {fused} ms "
            f"({change:+.1%}); max difference {difference:.1e}"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
