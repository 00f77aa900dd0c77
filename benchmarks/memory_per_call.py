"""Resident memory of AMSNet denoising, backbone call by backbone call (Linux CPU).

Runs variant B and then E (one R3 pass per backbone call) of the paper preset of a backbone
on one random image, and prints each variant's peak (``amsnet.memory.peak_memory``) and the
process's resident high-water mark after every backbone call, so that memory growing from
pass to pass (heap fragmentation) shows. ``--allocator default`` leaves glibc's thresholds
alone; ``tuned`` raises them as inference does (``amsnet.runtime.tune_cpu_allocator``).
Run each allocator setting in its own process: the thresholds cannot be lowered again.

    python benchmarks/memory_per_call.py --net deamnet --size 512 --allocator tuned
    python benchmarks/memory_per_call.py --net deamnet --size 512 --allocator default
"""

from __future__ import annotations

import argparse
import time

import torch

from amsnet.memory import peak_memory, status_bytes
from amsnet.runtime import prepare_for_inference, tune_cpu_allocator
from amsnet.studies.bench.cost import method_for


def resident_gib(field: str) -> float:
    """``VmHWM`` (high-water mark) or ``VmRSS`` of this process, in GiB."""
    value = status_bytes(field)
    if value is None:
        raise OSError(f"/proc/self/status has no {field}")
    return value / 2**30


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--net", default="deamnet")
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--allocator", choices=["tuned", "default"], default="tuned")
    args = parser.parse_args()
    if args.allocator == "tuned" and not tune_cpu_allocator():
        raise SystemExit("glibc's mallopt is not available here: use --allocator default")
    torch.manual_seed(0)
    method = prepare_for_inference(method_for(args.net, "paper"), "cpu")
    marks: list[str] = []
    forward = method.backbone.forward

    def traced(x: torch.Tensor) -> torch.Tensor:
        y = forward(x)
        marks.append(
            f"  call {tuple(x.shape)}: high-water {resident_gib('VmHWM'):.2f} GiB, "
            f"resident {resident_gib('VmRSS'):.2f} GiB"
        )
        return y

    method.backbone.forward = traced
    image = torch.rand(1, 3, args.size, args.size)
    generator = torch.Generator().manual_seed(0)
    for refine in (False, True):
        marks.clear()
        tic = time.perf_counter()
        with peak_memory("cpu") as peak:
            method.denoise(image, generator=generator, refine=refine, refine_batch=1)
        seconds = time.perf_counter() - tic
        gib = "not measured" if peak.bytes is None else f"{peak.bytes / 2**30:.2f} GiB"
        print(
            f"{args.net} {args.size}x{args.size}, allocator {args.allocator}, "
            f"{'E' if refine else 'B'}: {seconds:.1f} s, peak {gib}"
        )
        print("\n".join(marks), flush=True)


if __name__ == "__main__":
    main()
