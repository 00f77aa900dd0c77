"""amsnet's C layer norm (amsnet.native) against PyTorch's, alone and in the shipped models.

    python benchmarks/bench_native_norm.py --rounds 5 --repeats 9

First each channel count alone: ``F.layer_norm`` on the permuted channels-last view against
:func:`amsnet.ops.channel_norm.channel_layer_norm` with the C kernel, on ``(2, C, S, S)``
(with an element-wise add over the same memory as the floor), median of ``--repeats``. Then
each model in one process, the kernel switched off and on in alternating rounds (so that a
machine that gets busier slows both): ``method.denoise`` on one ``--size`` x ``--size`` image,
AMSNet B for a model with masks, the single pass for the student, median of ``--repeats``
per round, and the largest difference between the two outputs. Then training: the layer norm
forward and backward alone on ``(8, C, S, S)`` (a batch of 96x96 crops at each level of the
small NAFNet), and training steps of the student (``--train-model``; L1 to a fixed target,
batch 8 of 96x96, AdamW, as ``--adapt`` runs them), the kernels off and on in alternating
rounds. fp32, the allocator tuned as inference tunes it. Prints the figures of
docs/precision.md ("Layer norm as a C kernel").

With ``--bf16``: the bfloat16 kernel instead, alone on bfloat16 ``(2, C, S, S)`` against what
CPU bfloat16 autocast runs without it (convert to float32, ``F.layer_norm``, convert back),
then the models in bfloat16 with the C kernels off and on (no training part); figures of
docs/precision.md ("bfloat16 without autocast's conversions").
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time

import torch
import torch.nn.functional as F

from amsnet import native
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.ops.channel_norm import channel_layer_norm
from amsnet.runtime import tune_cpu_allocator

CASES = [(4, 512), (8, 512), (16, 256), (32, 128), (64, 64)]
BF16_CASES = [(4, 512), (8, 512), (16, 256), (32, 256), (64, 128), (128, 64), (512, 16)]


def _median_ms(run, repeats: int) -> float:
    run()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e3


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=["amsnet-nafnet-p", "student-nafnet"])
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=9)
    parser.add_argument("--train-model", default="student-nafnet")
    parser.add_argument("--train-steps", type=int, default=10, help="steps per round")
    parser.add_argument("--bf16", action="store_true", help="the bfloat16 kernel (inference)")
    args = parser.parse_args(argv)
    precision = "bf16" if args.bf16 else "fp32"
    tune_cpu_allocator()
    loaded = native._load()
    print(f"C kernels: {loaded[1].reason}; {torch.get_num_threads()} threads")
    if loaded[0] is None:
        print("nothing to compare: the C kernels are not available here")
        return 1
    switched_off = (None, native.NativeStatus(False, "switched off by the benchmark"))

    def switch(on: bool) -> None:
        native._loaded = loaded if on else switched_off

    if args.bf16:
        _bf16_alone(args.repeats)
    with torch.no_grad():
        for channels, side in [] if args.bf16 else CASES:
            x = torch.randn(2, channels, side, side).contiguous(memory_format=torch.channels_last)
            weight, bias = torch.rand(channels) + 0.5, torch.randn(channels)
            floor = _median_ms(lambda x=x: x + x, args.repeats)
            pytorch = _median_ms(
                lambda x=x, w=weight, b=bias: F.layer_norm(
                    x.permute(0, 2, 3, 1), (x.shape[1],), w, b, 1e-6
                ),
                args.repeats,
            )
            if channels in native.NORM_CHANNELS:
                own = _median_ms(
                    lambda x=x, w=weight, b=bias: channel_layer_norm(x, w, b, 1e-6), args.repeats
                )
                own_text = f"C kernel {own:.2f} ms"
            else:
                own_text = "no C kernel (PyTorch's is used)"
            print(
                f"(2, {channels}, {side}, {side}): add {floor:.2f} ms, F.layer_norm "
                f"{pytorch:.2f} ms, {own_text}"
            )

    image = torch.rand(3, args.size, args.size, generator=torch.Generator().manual_seed(0))
    for name in args.models:
        method = load_for_inference(name, "cpu", precision)
        plan = plan_tiles(method, args.size, args.size, refine=False, tile=None)

        def run(method=method, plan=plan) -> torch.Tensor:
            return denoise_image(method, image, plan=plan, seed=0)

        switch(False)
        plain = run()
        switch(True)
        difference = (run() - plain).abs().max().item()
        rounds: dict[str, list[float]] = {"off": [], "on": []}
        for _ in range(args.rounds):
            for label in ("off", "on"):
                switch(label == "on")
                rounds[label].append(_median_ms(run, args.repeats))
        switch(True)
        ratio = statistics.median(rounds["off"]) / statistics.median(rounds["on"])
        off = " / ".join(f"{v:.1f}" for v in rounds["off"])
        on = " / ".join(f"{v:.1f}" for v in rounds["on"])
        print(
            f"{name}: {off} -> {on} ms ({ratio:.2f}x; largest output difference {difference:.1e})"
        )
    if not args.bf16:
        _training(args, switch)
    return 0


def _bf16_alone(repeats: int) -> None:
    """The bfloat16 kernel against autocast's float32 layer norm with its two conversions."""
    with torch.no_grad():
        for channels, side in BF16_CASES:
            x = torch.randn(2, channels, side, side).contiguous(memory_format=torch.channels_last)
            x = x.bfloat16()
            weight, bias = torch.rand(channels) + 0.5, torch.randn(channels)

            def autocast_path(x=x, w=weight, b=bias) -> torch.Tensor:
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    out = F.layer_norm(x.permute(0, 2, 3, 1), (x.shape[1],), w, b, 1e-6)
                    return out.permute(0, 3, 1, 2).bfloat16()

            theirs = _median_ms(autocast_path, repeats)
            own = _median_ms(
                lambda x=x, w=weight, b=bias: channel_layer_norm(x, w, b, 1e-6), repeats
            )
            print(
                f"bf16 (2, {channels}, {side}, {side}): autocast's path {theirs:.2f} ms, "
                f"C kernel {own:.2f} ms"
            )


def _training(args: argparse.Namespace, switch) -> None:
    """The layer norm's forward and backward alone, then whole training steps."""
    for channels, side in [(8, 96), (16, 48), (32, 24)]:
        x = torch.randn(8, channels, side, side).contiguous(memory_format=torch.channels_last)
        x.requires_grad_(True)
        weight = (torch.rand(channels) + 0.5).requires_grad_(True)
        bias = torch.randn(channels).requires_grad_(True)
        upstream = torch.randn_like(x)
        times = {}
        for label in ("off", "on"):
            switch(label == "on")
            times[label] = _median_ms(
                lambda x=x, w=weight, b=bias, g=upstream: channel_layer_norm(
                    x, w, b, 1e-6
                ).backward(g),
                args.repeats,
            )
        print(
            f"training (8, {channels}, {side}, {side}), forward + backward: "
            f"PyTorch {times['off']:.2f} ms, C kernels {times['on']:.2f} ms"
        )
    generator = torch.Generator().manual_seed(0)
    noisy = torch.rand(8, 3, 96, 96, generator=generator)
    target = torch.rand(8, 3, 96, 96, generator=generator)
    rounds: dict[str, list[float]] = {"off": [], "on": []}
    for label in ("off", "on") * args.rounds:
        switch(label == "on")
        torch.manual_seed(0)
        method = load_for_inference(args.train_model, "cpu").train()
        optimiser = torch.optim.AdamW(method.parameters(), lr=1e-4)

        def step(method=method, optimiser=optimiser) -> None:
            loss = method.training_loss(noisy, target=target).loss
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()

        step()  # warm-up
        start = time.perf_counter()
        for _ in range(args.train_steps):
            step()
        rounds[label].append((time.perf_counter() - start) / args.train_steps * 1e3)
    switch(True)
    ratio = statistics.median(rounds["off"]) / statistics.median(rounds["on"])
    off = " / ".join(f"{v:.0f}" for v in rounds["off"])
    on = " / ".join(f"{v:.0f}" for v in rounds["on"])
    print(f"{args.train_model} training step (8x96x96): {off} -> {on} ms ({ratio:.2f}x)")


if __name__ == "__main__":
    sys.exit(main())
