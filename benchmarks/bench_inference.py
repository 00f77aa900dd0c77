"""Inference speed of AMSNet and AP-BSN per backbone preset, against the machine's ceiling.

For every preset it prints milliseconds per 256x256 RGB image for AMSNet ``denoise`` (k = 2,
without and with R3) and AP-BSN (without and with R3), the share of that time spent outside
the backbone passes (PD, partitions, masking, stitching, refinement bookkeeping), and the
achieved GFLOP/s (FLOPs counted by ``torch.utils.flop_counter``) as a fraction of a 3x3
64->64 convolution on 1x64x256x256, measured here in both memory formats.

    python benchmarks/bench_inference.py                       # paper presets, this device
    python benchmarks/bench_inference.py --nets unet dncnn --preset small --json out.json

Numbers are medians of ``--repeats`` timed runs after one warm-up run.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net, list_nets
from amsnet.runtime import prepare_for_inference, resolve_device, tune_cpu_allocator

SIZE = 256


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], object], device: torch.device, repeats: int) -> float:
    """Median wall-clock seconds of ``fn`` after one warm-up call."""
    fn()
    sync(device)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def flops(fn: Callable[[], object]) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()


def conv_ceiling(device: torch.device, channels_last: bool, repeats: int) -> float:
    """GFLOP/s of a 3x3 64->64 convolution on 1x64x256x256 (the reference kernel)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    x = torch.rand(1, 64, SIZE, SIZE, device=device)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        seconds = timed(lambda: conv(x), device, max(repeats, 5))
    return 2 * 64 * 64 * 9 * SIZE * SIZE / seconds / 1e9


def measure(
    method: torch.nn.Module,
    bare_inputs: list[tuple[int, ...]],
    device: torch.device,
    repeats: int,
    refine: bool,
) -> dict[str, float]:
    """Time ``denoise`` and the bare backbone passes it makes (inputs of the same shapes)."""
    noisy = torch.rand(1, 3, SIZE, SIZE, device=device)
    generator = torch.Generator(device=device).manual_seed(0)
    bare = [torch.rand(shape, device=device) for shape in bare_inputs]

    def run() -> None:
        method.denoise(noisy, generator=generator, refine=refine)

    def run_bare() -> None:
        with torch.no_grad():
            for x in bare:
                method.backbone(x)

    total = timed(run, device, repeats)
    backbone = timed(run_bare, device, repeats)
    count = flops(run)
    return {
        "ms": total * 1e3,
        "backbone_ms": backbone * 1e3,
        "overhead": max(0.0, (total - backbone) / total),
        "gflop": count / 1e9,
        "gflops": count / total / 1e9,
        "backbone_gflops": count / backbone / 1e9,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nets", nargs="+", default=None, help="backbones (default: all)")
    parser.add_argument("--preset", default="paper", help="preset of every backbone")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--repeats", type=int, default=3, help="timed runs without R3")
    parser.add_argument("--refine-repeats", type=int, default=1, help="timed runs with R3")
    parser.add_argument("--no-refine", action="store_true", help="skip the R3 measurements")
    parser.add_argument(
        "--layout",
        choices=["channels_last", "default"],
        default="channels_last",
        help="memory format of the weights (default: channels_last, what inference uses)",
    )
    parser.add_argument("--keep-allocator", action="store_true", help="do not tune glibc malloc")
    parser.add_argument("--json", help="also write the results to this JSON file")
    args = parser.parse_args(argv)

    device = resolve_device(args.device)
    tuned = False if args.keep_allocator else tune_cpu_allocator()
    channels_last = args.layout == "channels_last"
    torch.manual_seed(0)
    ceiling = {
        "channels_last": conv_ceiling(device, True, args.repeats),
        "default": conv_ceiling(device, False, args.repeats),
    }
    reference = max(ceiling.values())
    names = args.nets or [n for n in list_nets() if n != "dbsnl"]
    k = 2
    rows = []
    half = SIZE // 2
    for name in names:
        backbone = create_net(name, preset=args.preset)
        method = prepare_for_inference(
            AMSNet(backbone, num_masks=k), device, channels_last=channels_last
        )
        row = {
            "method": "AMSNet",
            "net": name,
            "params": sum(p.numel() for p in backbone.parameters()),
        }
        row["B"] = measure(method, [(k * 4, 3, half, half)], device, args.repeats, False)
        if not args.no_refine:
            passes = method.settings.refine_passes
            shapes = [(k * 4, 3, half, half), (passes * k, 3, SIZE, SIZE)]
            row["E"] = measure(method, shapes, device, args.refine_repeats, True)
        rows.append(row)
        print(json.dumps(row), file=sys.stderr, flush=True)
    if args.nets is None or "dbsnl" in args.nets:
        apbsn = prepare_for_inference(
            APBSN(create_net("dbsnl", preset=args.preset)), device, channels_last=channels_last
        )
        pad = apbsn.settings.pd_pad
        mosaic = (1, 3, SIZE + 2 * 2 * pad, SIZE + 2 * 2 * pad)
        row = {
            "method": "AP-BSN",
            "net": "dbsnl",
            "params": sum(p.numel() for p in apbsn.parameters()),
        }
        row["B"] = measure(apbsn, [mosaic], device, args.repeats, False)
        if not args.no_refine:
            full = (apbsn.settings.refine_passes, 3, SIZE + 2 * pad, SIZE + 2 * pad)
            row["E"] = measure(apbsn, [mosaic, full], device, args.refine_repeats, True)
        rows.append(row)

    header = {
        "device": str(device),
        "device_name": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or platform.machine(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "preset": args.preset,
        "layout": args.layout,
        "glibc_allocator_tuned": tuned,
        "conv_ceiling_gflops": ceiling,
    }
    print(
        f"device {header['device']} ({header['device_name']}), {header['threads']} threads, "
        f"torch {header['torch']}, weights {args.layout}, allocator tuned: {tuned}"
    )
    print(
        f"ceiling: 3x3 conv 64->64 on 1x64x256x256 = {ceiling['channels_last']:.0f} GFLOP/s "
        f"channels_last, {ceiling['default']:.0f} GFLOP/s default layout\n"
    )
    print(
        "| method | backbone | params | ms/img | ms/img R3 | GFLOP/img | scheme overhead "
        "| overhead R3 | backbone GFLOP/s | % of ceiling | % of ceiling R3 |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        b, e = row["B"], row.get("E")
        print(
            f"| {row['method']} | {row['net']} | {row['params']:,} | {b['ms']:.1f} | "
            f"{e['ms'] if e else float('nan'):.1f} | {b['gflop']:.1f} | {b['overhead']:.1%} | "
            f"{e['overhead'] if e else float('nan'):.1%} | {b['backbone_gflops']:.0f} | "
            f"{b['backbone_gflops'] / reference:.0%} | "
            f"{(e['backbone_gflops'] / reference) if e else float('nan'):.0%} |"
        )
    if args.json:
        with open(args.json, "w") as handle:
            json.dump({"environment": header, "results": rows}, handle, indent=2)
    return 0


if __name__ == "__main__":
    sys.exit(main())
