"""RNI15 (real noisy photographs, no ground truth): a comparison sheet of the shipped models.

    python benchmarks/rni15_sheet.py -o docs/rni15_comparison.jpg --markdown rni15.md

Columns: the noisy photo, BM3D with the estimated sigma (scikit-image's wavelet estimate: what
a user without ground truth gets), and each ``--model LABEL=NAME_OR_FILE:VARIANT`` (default:
the student, the teacher's P-E output, and the AP-BSN baseline with R3 when it is shipped).
There is no clean image, so the sheet shows centre crops and the table gives the no-reference
measures of :func:`amsnet.no_reference.assess` per method (means over the photos): the noise
left in the result and the structure in the residual (``noisy - result``: what a denoiser
removed that was not noise), both beside the input's noise estimate, and the seconds per
photo. RNI15 is in the shipped models' training pool (noisy pixels only), so this sheet shows
what they do to photos like the pool's, not a generalisation figure.
About 6 minutes on 2 CPU cores (BM3D is most of it).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import torch

from amsnet.atomic import atomic_path, check_new_output
from amsnet.data.io import read_image
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.no_reference import assess
from amsnet.studies.classical import bm3d_denoise, estimated_sigma
from amsnet.studies.comparison import comparison_sheet
from amsnet.zoo import SHIPPED
from zoo_quality import model_spec  # the same --model syntax (benchmarks/ is on sys.path)

BM3D_LABEL = "BM3D (estimated sigma)"
DEFAULT_MODELS = (
    "student (default)=student-nafnet:B",
    "teacher P-E=amsnet-nafnet-p:E",
    "AP-BSN E=apbsn-dbsnl:E",
)
SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="the sheet (.jpg/.png)")
    parser.add_argument("--markdown", type=Path, help="also write the table here")
    parser.add_argument("--data", type=Path, default=Path("../shared/data/rni15"))
    parser.add_argument("--model", action="append", help="LABEL=NAME_OR_FILE:VARIANT (B or E)")
    parser.add_argument("--size", type=int, default=160, help="side of the centre crops")
    parser.add_argument("--limit", type=int, help="at most this many photos")
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    if not args.data.is_dir():
        raise SystemExit(f"--data {args.data}: no such folder (RNI15 is in ../shared/data)")
    check_new_output(args.output, overwrite=args.overwrite)
    if args.markdown is not None:
        check_new_output(args.markdown, overwrite=args.overwrite, flag="--markdown")
    specs = args.model or [spec for spec in DEFAULT_MODELS if _shipped_or_file(spec)]
    models = {}
    for spec in specs:
        label, source, refine, ensemble = model_spec(spec)
        models[label] = (load_for_inference(source, "cpu"), refine, ensemble)
    files = sorted(p for p in args.data.iterdir() if p.suffix.lower() in SUFFIXES)
    files = files[: args.limit] if args.limit else files

    names: list[str] = []
    columns: dict[str, list[torch.Tensor]] = {"noisy": []}
    seconds: dict[str, list[float]] = {}
    measures: dict[str, list] = {}
    for path in files:
        noisy = read_image(path).rgb
        names.append(path.stem)
        columns["noisy"].append(noisy)
        outputs: dict[str, torch.Tensor] = {}
        if not args.no_bm3d:
            start = time.perf_counter()
            outputs[BM3D_LABEL] = bm3d_denoise(noisy, estimated_sigma(noisy)).clamp(0, 1)
            seconds.setdefault(BM3D_LABEL, []).append(time.perf_counter() - start)
        for label, (method, refine, ensemble) in models.items():
            plan = plan_tiles(method, *noisy.shape[-2:], refine=refine)
            start = time.perf_counter()
            outputs[label] = denoise_image(
                method, noisy, refine=refine, plan=plan, ensemble=ensemble
            ).clamp(0, 1)
            seconds.setdefault(label, []).append(time.perf_counter() - start)
        for label, out in outputs.items():
            columns.setdefault(label, []).append(out)
            measures.setdefault(label, []).append(assess(noisy, out))
        print(f"{path.name}: done", flush=True)

    scores = {
        (label, name): _short(report)
        for label, reports in measures.items()
        for name, report in zip(names, reports, strict=True)
    }
    comparison_sheet(args.output, names, columns, None, scores, size=args.size)
    text = _markdown(len(names), measures, seconds)
    print(text)
    if args.markdown is not None:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(text)
    return 0


def _shipped_or_file(spec: str) -> bool:
    _, source, _, _ = model_spec(spec)
    return source not in SHIPPED or SHIPPED[source].path.is_file()


def _noise_left(report) -> float:
    """The noise left in flat regions as a fraction of the input's noise."""
    return report.noise_left_sigma / max(report.input_noise_sigma, 1e-8)


def _short(report) -> str:
    return f"noise left {100 * _noise_left(report):.0f}%"


def _markdown(count: int, measures: dict[str, list], seconds: dict[str, list[float]]) -> str:
    lines = [
        f"RNI15 ({count} real noisy photos, no ground truth; no-reference measures, means):",
        "",
        "| method | noise left / input noise | residual structure gain | checkerboard (dB) "
        "| s / photo |",
        "|---|---:|---:|---:|---:|",
    ]
    for label, reports in measures.items():
        left = statistics.fmean(_noise_left(r) for r in reports)
        gain = statistics.fmean(r.residual_structure_gain for r in reports)
        checker = statistics.fmean(r.checkerboard_db for r in reports)
        lines.append(
            f"| {label} | {left:.2f} | {gain:.2f} | {checker:.1f} "
            f"| {statistics.fmean(seconds[label]):.2f} |"
        )
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    raise SystemExit(main())
