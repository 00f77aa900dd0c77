"""Inference speed and memory of AMSNet and AP-BSN per backbone preset, against a ceiling.

For every selected backbone preset: AMSNet ``denoise`` (k = 2) as variant B (no refinement)
and E (with R3), and AP-BSN (DBSNl) without and with R3. Per variant:

* milliseconds per image of ``size`` x ``size`` pixels (RGB, default 256): the median of
  ``repeats`` timed calls after one warm-up call;
* milliseconds per megapixel, timed on an image of ``megapixel_size`` pixels a side (default
  1024), not extrapolated; there E runs its R3 passes one per backbone call
  (``refine_batch=1``, as tiled inference does) so memory stays that of the B pass, and its
  first call is timed too (no separate warm-up: it would double a run of minutes);
* peak memory of the call (:func:`amsnet.memory.peak_memory`; measured during the warm-up
  call): resident-size increase on a Linux CPU, allocator peak on CUDA;
* the scheme overhead: the share of the time spent outside the backbone calls (PD,
  partitions, masking, stitching, R3 bookkeeping), found by timing the same backbone calls on
  inputs of the shapes ``denoise`` gives it (recorded while counting its FLOPs);
* FLOPs per image (:mod:`amsnet.studies.bench.counting`, counted on the meta device) and the
  backbone's achieved GFLOP/s as a share of the *ceiling*, a 3x3 64->64 convolution on
  1x64x256x256 measured on the same machine in both memory formats and in every measured
  precision.

``precisions`` measures each method in several backbone precisions (``fp32``, ``bf16``,
``fp16``, ``auto``; :mod:`amsnet.precision`) one after the other, so fp32 and bfloat16 come
out side by side in one run, each against the ceiling of its own precision.
"""

from __future__ import annotations

import datetime
import logging
import platform
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch

from amsnet import native
from amsnet.errors import ConfigError
from amsnet.memory import available_memory, peak_memory
from amsnet.nets import list_nets
from amsnet.ops.refine import default_passes_per_call
from amsnet.precision import (
    backbone_dtype,
    check_precision,
    choose_precision,
    cpu_has_native_bf16,
    precision_name,
    resolve_precision,
    run_backbone,
    set_precision,
)
from amsnet.runtime import prepare_for_inference, resolve_device, tune_cpu_allocator
from amsnet.studies.bench.cost import BLIND_SPOT_NET, count_denoise, method_for

log = logging.getLogger(__name__)

SIZE = 256
"""Default side of the timed image (the supplement's Fig. 5 times 256x256 images)."""
MEGAPIXEL_SIZE = 1024
"""Default side of the image the time per megapixel is measured on."""
CEILING_SIZE = 256
"""Side of the reference convolution's input."""
LAYOUTS = ("channels_last", "default")


@dataclass
class SpeedOptions:
    """What :func:`run_speed` measures.

    Attributes:
        nets: backbones (default: all; DBSNl is measured in AP-BSN, the others in AMSNet).
        preset: preset of every backbone.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:N`` or ``mps``.
        repeats: timed calls per variant without R3.
        refine_repeats: timed calls per variant with R3.
        refine: also measure the R3 variants.
        refine_batch: R3 passes per backbone call at ``size`` (default: what ``denoise``
            chooses, :func:`amsnet.ops.refine.default_passes_per_call`: one pass per call
            for 256x256 on a CPU, four on a GPU; ``amsnet denoise`` fits them to its memory
            budget instead).
        size: side of the timed image, pixels.
        megapixel_size: side of the image for the time per megapixel; ``None`` skips it.
        layout: memory format of the weights (``channels_last``, what inference uses, or
            ``default``).
        tune_allocator: raise glibc's allocator thresholds first (what inference does).
        precisions: backbone precisions to measure each method in (``fp32``, ``bf16``,
            ``fp16``, ``auto``), side by side.
    """

    nets: list[str] | None = None
    preset: str = "paper"
    device: str = "auto"
    repeats: int = 3
    refine_repeats: int = 1
    refine: bool = True
    refine_batch: int | None = None
    size: int = SIZE
    megapixel_size: int | None = MEGAPIXEL_SIZE
    layout: str = "channels_last"
    tune_allocator: bool = True
    precisions: tuple[str, ...] = ("fp32",)

    def check(self) -> None:
        """Raise :class:`ConfigError` for values that cannot be measured."""
        if self.repeats < 1 or self.refine_repeats < 1:
            raise ConfigError("--repeats and --refine-repeats must be at least 1")
        if self.refine_batch is not None and self.refine_batch < 1:
            raise ConfigError(f"--refine-batch must be at least 1, got {self.refine_batch}")
        if self.size < 8:
            raise ConfigError(f"--size must be at least 8 pixels, got {self.size}")
        if self.megapixel_size is not None and self.megapixel_size < 8:
            raise ConfigError(
                f"--megapixel-size must be at least 8 pixels, got {self.megapixel_size}; "
                "use --no-megapixel to skip the measurement"
            )
        if self.layout not in LAYOUTS:
            raise ConfigError(f"unknown layout {self.layout!r}; choose one of {LAYOUTS}")
        if not self.precisions:
            raise ConfigError("--precision needs at least one precision")
        for name in self.precisions:
            check_precision(name)
        unknown = sorted(set(self.nets or []) - set(list_nets()))
        if unknown:
            raise ConfigError(f"unknown backbone(s) {unknown}; registered: {list_nets()}")


def synchronize(device: torch.device) -> None:
    """Wait for the device's queued work (timing an asynchronous device needs it)."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    elif device.type == "mps":
        torch.mps.synchronize()


def timed(
    fn: Callable[[], object], device: torch.device, repeats: int, *, warm_up: bool = True
) -> tuple[float, int | None]:
    """Median wall-clock seconds of ``repeats`` calls of ``fn`` after one warm-up call.

    Args:
        warm_up: ``False`` times the first call too (the one whose peak memory is measured):
            for calls of minutes, where a warm-up's share of the time is negligible but a
            second call doubles the run.

    Returns:
        ``(seconds, peak_bytes)``: the peak memory is measured during the warm-up call
        (``None`` where it cannot be measured).
    """
    times = []
    with peak_memory(device) as peak:
        start = time.perf_counter()
        fn()
        synchronize(device)
        if not warm_up:
            times.append(time.perf_counter() - start)
            repeats -= 1
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        synchronize(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times), peak.bytes


def conv_ceiling(
    device: torch.device, channels_last: bool, repeats: int, dtype: torch.dtype | None = None
) -> float:
    """GFLOP/s of a 3x3 64->64 convolution on 1x64x256x256 (the reference kernel), in
    ``dtype`` (``None``: float32; weights and input stored in it, as autocast would)."""
    conv = torch.nn.Conv2d(64, 64, 3, padding=1, bias=False).to(device)
    x = torch.rand(1, 64, CEILING_SIZE, CEILING_SIZE, device=device)
    if dtype is not None:
        conv, x = conv.to(dtype), x.to(dtype)
    if channels_last:
        conv = conv.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)
    with torch.inference_mode():
        seconds, _ = timed(lambda: conv(x), device, max(repeats, 5))
    return 2 * 64 * 64 * 9 * CEILING_SIZE**2 / seconds / 1e9


MEMORY_HEADROOM = 0.8
"""Share of the available memory a per-megapixel run may be expected to use."""


def measure_variant(
    method: torch.nn.Module,
    meta_method: torch.nn.Module,
    device: torch.device,
    options: SpeedOptions,
    refine: bool,
    base_peak: int | None = None,
) -> dict[str, Any]:
    """Time, memory and FLOPs of one variant (``refine``: E) of one method.

    ``meta_method`` is the same method built on the meta device, for counting.
    ``base_peak``: the B variant's peak bytes at ``size`` (default: this variant's); the
    per-megapixel run (R3 one pass per call, so about B's memory) is skipped, with the
    reason in ``megapixel_skipped``, when that peak scaled to its pixels exceeds
    :data:`MEMORY_HEADROOM` of the available memory: an out-of-memory kill would lose the
    whole report (the paper DeamNet needs more than 24 GB for one 1024x1024 call).
    """
    size = options.size
    repeats = options.refine_repeats if refine else options.repeats
    noisy = torch.rand(1, 3, size, size, device=device)
    refine_batch = None
    if refine:
        # Resolved here, on the real device: counting runs on the meta device, whose default
        # would differ.
        refine_batch = options.refine_batch or default_passes_per_call(
            noisy, method.settings.refine_passes
        )
    count = count_denoise(meta_method, size, refine=refine, refine_batch=refine_batch)
    generator = torch.Generator(device=device).manual_seed(0)
    bare = [torch.rand(shape, device=device) for shape in count.calls]

    def run() -> None:
        method.denoise(noisy, generator=generator, refine=refine, refine_batch=refine_batch)

    dtype = backbone_dtype(method)

    def run_bare() -> None:
        with torch.no_grad():
            for x in bare:
                run_backbone(method.backbone, x, dtype)

    total, peak = timed(run, device, repeats)
    backbone, _ = timed(run_bare, device, repeats)
    record: dict[str, Any] = {
        "ms_per_image": total * 1e3,
        "seconds_per_image": total,
        "backbone_ms": backbone * 1e3,
        "overhead": max(0.0, (total - backbone) / total),
        "gflop_per_image": count.flops / 1e9,
        "gflops": count.flops / total / 1e9,
        "backbone_gflops": count.flops / backbone / 1e9,
        "peak_mib": None if peak is None else peak / 2**20,
        "refine_batch": refine_batch,
        "ms_per_megapixel": None,
        "megapixel_peak_mib": None,
        "megapixel_skipped": None,
    }
    if options.megapixel_size is not None:
        side = options.megapixel_size
        reference = base_peak if base_peak is not None else peak
        available = available_memory(device)
        if reference is not None and available is not None:
            expected = reference * (side * side) / (size * size)
            if expected >= MEMORY_HEADROOM * available:
                record["megapixel_skipped"] = (
                    f"needs about {expected / 2**30:.1f} GiB at {side}x{side}, "
                    f"{available / 2**30:.1f} GiB available"
                )
                log.warning(
                    "%s per megapixel skipped: %s",
                    type(method.backbone).__name__,
                    record["megapixel_skipped"],
                )
                return record
        large = torch.rand(1, 3, side, side, device=device)
        # One R3 pass per backbone call: all passes at once would need refine_passes times
        # the memory of the B pass on a large image.
        refine_batch = 1 if refine else None

        def run_large() -> None:
            method.denoise(large, generator=generator, refine=refine, refine_batch=refine_batch)

        # With R3 one call takes minutes on a CPU and the model is warm from the runs above:
        # its first call is timed too.
        seconds, large_peak = timed(run_large, device, repeats, warm_up=not refine)
        record["ms_per_megapixel"] = seconds * 1e3 / (side * side / 1e6)
        record["megapixel_peak_mib"] = None if large_peak is None else large_peak / 2**20
    return record


def device_name(device: torch.device) -> str:
    """The GPU's name, or the CPU's model name (``/proc/cpuinfo`` on Linux)."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def run_speed(
    options: SpeedOptions, on_record: Callable[[dict[str, Any]], None] | None = None
) -> dict[str, Any]:
    """Measure every selected method and variant (see the module docstring).

    ``on_record(report)`` is called with the report so far after every record, so that a
    caller can save it as it grows (a run of the paper presets takes an hour on a CPU).

    Returns:
        ``{"environment": {...}, "results": [...]}``: the environment (device, its name,
        threads, torch version, date, options, ceiling) and one record per method and variant
        with ``label``, ``method``, ``net``, ``variant``, ``params`` and the measurements.

    Raises:
        ConfigError: bad options, an unknown backbone or preset, or an unavailable device.
    """
    options.check()
    device = resolve_device(options.device)
    tuned = tune_cpu_allocator() if options.tune_allocator else False
    channels_last = options.layout == "channels_last"
    torch.manual_seed(0)
    ceiling = {
        "channels_last": conv_ceiling(device, True, options.repeats),
        "default": conv_ceiling(device, False, options.repeats),
    }
    # Explicit precisions resolve without a model; auto's choice may depend on the backbone,
    # so its ceiling is that of the precision auto picks with no model's say.
    resolved = {
        name: resolve_precision(name, device, flag="--precision") for name in options.precisions
    }
    precision_ceiling = {
        precision_name(dtype): (
            ceiling[options.layout]
            if dtype is None
            else conv_ceiling(device, channels_last, options.repeats, dtype)
        )
        for dtype in resolved.values()
    }
    environment = {
        "device": str(device),
        "device_name": device_name(device),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
        "python": platform.python_version(),
        "date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        "preset": options.preset,
        "size": options.size,
        "megapixel_size": options.megapixel_size,
        "repeats": options.repeats,
        "refine_repeats": options.refine_repeats,
        "refine_batch": options.refine_batch,
        "layout": options.layout,
        "glibc_allocator_tuned": tuned,
        "conv_ceiling_gflops": ceiling,
        "precisions": list(options.precisions),
        "precision_ceiling_gflops": precision_ceiling,
        "native_bf16": device.type == "cuda" or cpu_has_native_bf16(),
        # amsnet's C layer norm for narrow networks (amsnet.native): in use, or why not.
        "native_kernels": native.status().reason if device.type == "cpu" else "not on a GPU",
    }
    results: list[dict[str, Any]] = []
    report = {"environment": environment, "results": results}
    names = options.nets or list_nets()
    ordered = [n for n in names if n != BLIND_SPOT_NET] + [n for n in names if n == BLIND_SPOT_NET]
    for name in ordered:
        method = prepare_for_inference(
            method_for(name, options.preset), device, channels_last=channels_last
        )
        meta_method = method_for(name, options.preset, "meta")
        label = "AP-BSN" if name == BLIND_SPOT_NET else "AMSNet"
        variants = [("B", False), ("E", True)] if options.refine else [("B", False)]
        for asked in options.precisions:
            dtype = choose_precision(method, asked, device)
            set_precision(method, dtype)
            precision = precision_name(dtype)
            base_peak = None
            for variant, refine in variants:
                measured = measure_variant(method, meta_method, device, options, refine, base_peak)
                if not refine and measured["peak_mib"] is not None:
                    base_peak = int(measured["peak_mib"] * 2**20)
                suffix = "" if precision == "fp32" else f" {precision}"
                record = {
                    "label": f"{label} ({name}) {variant}{suffix}",
                    "method": label,
                    "net": name,
                    "variant": variant,
                    "precision": precision,
                    "params": sum(p.numel() for p in method.parameters()),
                    **measured,
                }
                log.info("%s: %.1f ms per image", record["label"], record["ms_per_image"])
                results.append(record)
                if on_record is not None:
                    on_record(report)
        del method
    return report


def _number(value: float | None, spec: str) -> str:
    return "n/a" if value is None else format(value, spec)


def speed_markdown(report: dict[str, Any]) -> str:
    """The report as a header and a markdown table (one row per method and variant)."""
    env = report["environment"]
    ceiling = env["conv_ceiling_gflops"]
    reference = max(ceiling.values())
    # Reports written before precisions were measured have fp32 rows only.
    by_precision = env.get("precision_ceiling_gflops") or {"fp32": reference}
    fp32_ms = {
        (row["method"], row["net"], row["variant"]): row["ms_per_image"]
        for row in report["results"]
        if row.get("precision", "fp32") == "fp32"
    }
    megapixel = env["megapixel_size"]
    # Given with --refine-batch, or else what denoise chose (the same for every E row).
    per_call = env.get("refine_batch") or next(
        (row["refine_batch"] for row in report["results"] if row.get("refine_batch")), None
    )
    lines = [
        f"device {env['device']} ({env['device_name']}), {env['threads']} threads, "
        f"torch {env['torch']}, {env['date']}; preset {env['preset']}, weights "
        f"{env['layout']}, allocator tuned: {env['glibc_allocator_tuned']}"
        + (f"; C kernels: {env['native_kernels']}" if "native_kernels" in env else ""),
        f"ceiling: 3x3 conv 64->64 on 1x64x256x256 = {ceiling['channels_last']:.0f} GFLOP/s "
        f"channels_last, {ceiling['default']:.0f} GFLOP/s default layout (fp32)"
        + "".join(
            f"; {name} {value:.0f} GFLOP/s {env['layout']}"
            for name, value in by_precision.items()
            if name != "fp32"
        ),
        f"times: median of {env['repeats']} runs ({env['refine_repeats']} with R3) after a "
        f"warm-up; image {env['size']}x{env['size']}"
        + (f"; R3 {per_call} pass(es) per backbone call" if per_call else "")
        + (f"; per megapixel on {megapixel}x{megapixel}" if megapixel else ""),
        "",
        f"| method | backbone | variant | precision | params | ms/img | vs fp32 | ms/MP | "
        f"peak MiB | peak MiB {megapixel or '-'}² | GFLOP/img | scheme overhead | "
        f"backbone GFLOP/s | % of ceiling |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in report["results"]:
        precision = row.get("precision", "fp32")
        own_ceiling = by_precision.get(precision, reference)
        base = fp32_ms.get((row["method"], row["net"], row["variant"]))
        speedup = f"{base / row['ms_per_image']:.2f}x" if base else "n/a"
        lines.append(
            f"| {row['method']} | {row['net']} | {row['variant']} | {precision} | "
            f"{row['params']:,} | {row['ms_per_image']:.1f} | {speedup} | "
            f"{_number(row['ms_per_megapixel'], '.0f')} | "
            f"{_number(row['peak_mib'], '.0f')} | {_number(row['megapixel_peak_mib'], '.0f')} | "
            f"{row['gflop_per_image']:.1f} | {row['overhead']:.1%} | "
            f"{row['backbone_gflops']:.0f} | {row['backbone_gflops'] / own_ceiling:.0%} |"
        )
    skipped = [row for row in report["results"] if row.get("megapixel_skipped")]
    if skipped:
        lines.append("")
        lines += [
            f"Per megapixel skipped for {row['label']}: {row['megapixel_skipped']}."
            for row in skipped
        ]
    return "\n".join(lines) + "\n"
