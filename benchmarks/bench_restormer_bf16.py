"""The paper Restormer in bfloat16 with and without amsnet's C "BiasFree" norm, side by side.

One backbone call on ``(2, 3, 256, 256)`` channels-last under CPU bfloat16 autocast, the C
norm (:func:`amsnet.ops.channel_norm.bias_free_norm_bf16`) switched off and on in alternating
rounds of one process, plus the largest output differences against float32.

    python benchmarks/bench_restormer_bf16.py --rounds 3

About 1 minute on 2 CPU cores. Needs amsnet's C kernels (``amsnet bench speed`` says whether
they are built).
"""

from __future__ import annotations

import argparse
import time

import torch

import amsnet.nets.layers as layers
from amsnet import native
from amsnet.nets import create_net


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--size", type=int, default=256)
    args = parser.parse_args()
    if native.library() is None:
        raise SystemExit(f"amsnet's C kernels are not available: {native.status().reason}")
    torch.manual_seed(0)
    net = create_net("restormer", preset="paper").eval().to(memory_format=torch.channels_last)
    x = torch.rand(2, 3, args.size, args.size).contiguous(memory_format=torch.channels_last)
    kernels = {"PyTorch's norm": lambda *_: None, "C norm": layers.bias_free_norm_bf16}

    def run() -> torch.Tensor:
        with torch.no_grad(), torch.autocast("cpu", dtype=torch.bfloat16):
            return net(x).float()

    outputs = {}
    for name, kernel in kernels.items():
        layers.bias_free_norm_bf16 = kernel
        outputs[name] = run()
    with torch.no_grad():
        reference = net(x)
    for name, out in outputs.items():
        print(f"{name}: largest difference from float32 {(out - reference).abs().max():.2e}")
    times: dict[str, list[float]] = {name: [] for name in kernels}
    for _ in range(args.rounds):
        for name, kernel in kernels.items():
            layers.bias_free_norm_bf16 = kernel
            start = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - start) * 1000)
    for name, values in times.items():
        print(f"{name}: " + " / ".join(f"{v:.0f}" for v in values) + " ms per call")


if __name__ == "__main__":
    main()
