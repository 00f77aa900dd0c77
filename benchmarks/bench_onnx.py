"""onnxruntime against PyTorch on this CPU, side by side in one run: ms per megapixel.

For the default shipped model (``amsnet.zoo.DEFAULT_MODEL``) and the shipped teacher, variant
B, whole images of ``--sizes`` (default 512 and 1024 pixels square):

* ``torch fp32``: the model as ``amsnet denoise --precision fp32`` runs it (channels-last
  weights, :func:`amsnet.inference.load_for_inference`);
* ``torch auto``: as ``amsnet denoise`` runs it by default (bfloat16 where the CPU computes
  it natively, else fp32: :mod:`amsnet.precision`);
* ``onnxruntime``: the graph of ``amsnet export`` (float32, CPUExecutionProvider).

The runtimes alternate within every repeat (one image each, in turn), so a change of machine
load hits them alike; the figure is the median over ``--repeats``. The last column is the
largest difference of the ONNX output from PyTorch fp32's on the same image.

    flock /tmp/amsnet-torch.lock .venv/bin/python benchmarks/bench_onnx.py --json onnx.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from amsnet.atomic import atomic_path
from amsnet.inference import load_for_inference
from amsnet.onnx_export import export_onnx
from amsnet.onnx_runtime import import_onnxruntime, OnnxModel
from amsnet.ops.masks import PixelKey
from amsnet.precision import backbone_dtype, precision_name
from amsnet.zoo import DEFAULT_MODEL, SHIPPED

TEACHER = next(name for name, model in SHIPPED.items() if model.role == "teacher")


def timed(run: Callable[[], torch.Tensor]) -> tuple[float, torch.Tensor]:
    """Seconds of one call and its output."""
    start = time.perf_counter()
    out = run()
    return time.perf_counter() - start, out


def bench_model(name: str, sizes: list[int], repeats: int, folder: Path) -> list[dict[str, Any]]:
    """The rows of one model: every size, every runtime."""
    start = time.perf_counter()
    graph = OnnxModel(export_onnx(name, folder / f"{name}.onnx"), device="cpu")
    print(f"{name}: exported in {time.perf_counter() - start:.1f} s", flush=True)
    runners = {
        "torch fp32": load_for_inference(name, "cpu", "fp32"),
        "torch auto": load_for_inference(name, "cpu", "auto"),
        "onnxruntime": graph,
    }
    labels = {
        key: precision_name(backbone_dtype(model)) if key.startswith("torch") else "fp32"
        for key, model in runners.items()
    }
    rows = []
    for size in sizes:
        image = torch.rand(1, 3, size, size, generator=torch.Generator().manual_seed(size))
        key = PixelKey(graph.seed)

        def call(model: Any, image: torch.Tensor = image, key: PixelKey = key) -> torch.Tensor:
            return model.denoise(image, pixel_key=key)

        outputs = {label: call(model) for label, model in runners.items()}  # warm-up
        times: dict[str, list[float]] = {label: [] for label in runners}
        for _ in range(repeats):
            for label, model in runners.items():  # alternating: load changes hit all alike
                seconds, outputs[label] = timed(lambda model=model: call(model))
                times[label].append(seconds)
        difference = float((outputs["onnxruntime"] - outputs["torch fp32"]).abs().max())
        megapixels = size * size / 1e6
        for label in runners:
            median = statistics.median(times[label])
            rows.append(
                {
                    "model": name,
                    "size": size,
                    "runtime": label,
                    "precision": labels[label],
                    "ms_per_image": 1e3 * median,
                    "ms_per_megapixel": 1e3 * median / megapixels,
                    "fastest_ms_per_megapixel": 1e3 * min(times[label]) / megapixels,
                    "onnx_vs_torch_fp32_max_abs": difference,
                }
            )
            print(
                f"  {size}x{size} {label:12s} {labels[label]:5s} {1e3 * median / megapixels:9.1f} "
                "ms/MP",
                flush=True,
            )
    return rows


def markdown(rows: list[dict[str, Any]]) -> str:
    """The rows as a markdown table, each runtime's speed relative to torch fp32."""
    lines = [
        "| model | size | runtime | precision | ms / MP (median) | fastest | vs torch fp32 "
        "| max abs ONNX - fp32 |",
        "|---|---:|---|---|---:|---:|---:|---:|",
    ]
    base = {
        (r["model"], r["size"]): r["ms_per_megapixel"] for r in rows if r["runtime"] == "torch fp32"
    }
    for r in rows:
        ratio = base[(r["model"], r["size"])] / r["ms_per_megapixel"]
        lines.append(
            f"| {r['model']} | {r['size']} | {r['runtime']} | {r['precision']} | "
            f"{r['ms_per_megapixel']:.0f} | {r['fastest_ms_per_megapixel']:.0f} | {ratio:.2f}x | "
            f"{r['onnx_vs_torch_fp32_max_abs']:.1e} |"
        )
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=[DEFAULT_MODEL, TEACHER])
    parser.add_argument("--sizes", nargs="+", type=int, default=[512, 1024])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--json", type=Path, help="also write the rows here")
    args = parser.parse_args()
    ort = import_onnxruntime()
    print(
        f"torch {torch.__version__} ({torch.get_num_threads()} threads), onnxruntime "
        f"{ort.__version__}, {platform.processor() or platform.machine()}",
        flush=True,
    )
    rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="amsnet-bench-onnx-") as folder:
        for name in args.models:
            rows += bench_model(name, args.sizes, args.repeats, Path(folder))
    print()
    print(markdown(rows))
    if args.json is not None:
        with atomic_path(args.json) as tmp:
            tmp.write_text(json.dumps(rows, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
