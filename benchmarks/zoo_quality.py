"""Shipped models against BM3D on real camera noise: CC15 (never trained on) and the PolyU crops
(in-scene: their scenes are in the training pool).

    python benchmarks/zoo_quality.py -o zoo_quality.json \\
        --model "student=student-nafnet:B" --model "teacher P-E=amsnet-nafnet-p:E" \\
        --model "teacher P=amsnet-nafnet-p:B" --adapt 300

Every row is measured in this run: the noisy input, BM3D with the oracle sigma (std of
noisy - clean: the best BM3D can do; it needs the ground truth, so it is not a real-use
figure) and with the estimated sigma (scikit-image's wavelet estimate: what a user gets), and
each ``--model LABEL=NAME_OR_FILE:VARIANT`` (``B`` or ``E``, with ``xN`` for the mean over
N flips and rotations: ``Bx8``). ``--adapt STEPS`` adds "student + adapt" rows on
CC15: the first model fine-tuned on all 15 noisy CC15 images at once (self-supervised), timed.
PSNR / SSIM on 8-bit-rounded images (the AMSNet protocol), mean over images; seconds are per
image on this machine (2 cores here), model load excluded. BM3D results are cached in
``--bm3d-cache`` (they are deterministic) so reruns only time the models.
The ground truth is used for scoring only.

``--downscale F`` shrinks every pair first by averaging F x F blocks (noisy and clean alike,
both rounded to 8 bits again): a photo resized for the web, whose content is sharper per pixel
and whose noise is weaker and less correlated than the camera's. The BM3D cache keys include
the factor.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

import amsnet
from amsnet.atomic import atomic_path, check_new_output
from amsnet.config import check_downscale_factors
from amsnet.data.benchmarks import load_pairs
from amsnet.errors import ConfigError
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.metrics import psnr, ssim
from amsnet.ops.downscale import box_downscale
from amsnet.studies.classical import bm3d_denoise, estimated_sigma, oracle_sigma

DATASETS = {
    "cc15": ("cc", "../shared/data/cc15", "unseen cameras and scenes (never trained on)"),
    "polyu": ("polyu", "../shared/data/polyu/CroppedImages", "in-scene (scenes in the pool)"),
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON report")
    parser.add_argument("--markdown", type=Path, help="also write the tables here")
    parser.add_argument(
        "--model",
        action="append",
        default=[],
        help="LABEL=NAME_OR_FILE:VARIANT (B or E, xN: self-ensemble of N, e.g. Bx8)",
    )
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--limit", type=int, help="at most this many images per set")
    parser.add_argument("--adapt", type=int, default=0, help="adaptation steps on CC15")
    parser.add_argument("--bm3d-cache", type=Path, default=Path("runs/cache/bm3d.json"))
    parser.add_argument("--no-bm3d", action="store_true")
    parser.add_argument(
        "--bm3d-estimated-on",
        nargs="*",
        default=list(DATASETS),
        choices=DATASETS,
        help="sets that get the estimated-sigma BM3D row (16 s per 512x512 image on 2 cores)",
    )
    parser.add_argument(
        "--downscale",
        type=int,
        default=1,
        help="box-downscale every pair by this factor first (1-8; default 1: as stored)",
    )
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    try:
        check_downscale_factors([args.downscale])
    except ConfigError as error:
        parser.error(f"--downscale: {error}")
    check_new_output(args.output, overwrite=args.overwrite)
    if args.markdown is not None:
        check_new_output(args.markdown, overwrite=args.overwrite, flag="--markdown")
    models = [model_spec(text) for text in args.model]
    loaded = {
        label: (load_for_inference(source, "cpu"), refine, ensemble)
        for label, source, refine, ensemble in models
    }
    cache = json.loads(args.bm3d_cache.read_text()) if args.bm3d_cache.is_file() else {}
    report: dict = {
        "machine": f"{torch.get_num_threads()} threads",
        "downscale": args.downscale,
        "datasets": {},
    }
    for key in args.datasets:
        dataset, root, note = DATASETS[key]
        pairs = [
            downscaled(pair, args.downscale) for pair in load_pairs(dataset, root, limit=args.limit)
        ]
        if args.downscale > 1:
            note += f", box-downscaled x{args.downscale}"
        rows: dict[str, list[dict]] = {"noisy input": []}
        for pair in pairs:
            rows["noisy input"].append(_score(pair.noisy, pair.clean, 0.0))
        if not args.no_bm3d:
            for label, sigma_of in (
                ("BM3D (oracle sigma)", lambda p: oracle_sigma(p.noisy, p.clean)),
                ("BM3D (estimated sigma)", lambda p: estimated_sigma(p.noisy)),
            ):
                if label.startswith("BM3D (estimated") and key not in args.bm3d_estimated_on:
                    continue
                rows[label] = []
                for pair in pairs:
                    scale = f"/x{args.downscale}" if args.downscale > 1 else ""
                    cache_key = f"{key}{scale}/{pair.name}/{label}"
                    if cache_key not in cache:
                        start = time.perf_counter()
                        out = bm3d_denoise(pair.noisy, sigma_of(pair))
                        cache[cache_key] = _score(out, pair.clean, time.perf_counter() - start)
                        with atomic_path(args.bm3d_cache) as tmp:
                            tmp.write_text(json.dumps(cache))
                    rows[label].append(cache[cache_key])
        for label, (method, refine, ensemble) in loaded.items():
            rows[label] = [_run(method, pair, refine, ensemble) for pair in pairs]
            print(f"{key}: {label} {_mean(rows[label], 'psnr'):.2f} dB", flush=True)
        if args.adapt and key == "cc15" and models:
            label, _, refine, ensemble = models[0]
            method = loaded[label][0]
            start = time.perf_counter()
            adapted = amsnet.adapt(method, [p.noisy for p in pairs], steps=args.adapt)
            adapt_seconds = time.perf_counter() - start
            rows[f"{label} + adapt {args.adapt}"] = [
                _run(adapted, pair, refine, ensemble) for pair in pairs
            ]
            report.setdefault("adapt_seconds", {})[key] = adapt_seconds
        report["datasets"][key] = {
            "note": note,
            "images": len(pairs),
            "rows": {
                label: {
                    "psnr": _mean(values, "psnr"),
                    "ssim": _mean(values, "ssim"),
                    "seconds_per_image": _mean(values, "seconds"),
                    "per_image": values,
                }
                for label, values in rows.items()
            },
        }
    with atomic_path(args.output) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    text = _markdown(report)
    print(text)
    if args.markdown is not None:
        with atomic_path(args.markdown) as tmp:
            tmp.write_text(text)
    return 0


def model_spec(text: str) -> tuple[str, str, bool, int]:
    """``LABEL=NAME_OR_FILE:VARIANT`` as ``(label, source, refine, ensemble)``; VARIANT is
    ``B`` or ``E``, optionally with ``xN`` (1-8) for a self-ensemble of N flips and rotations
    (also used by ``rni15_sheet.py``)."""
    label, separator, rest = text.partition("=")
    source, _, variant = rest.rpartition(":")
    letter, times, count = variant.partition("x")
    if (
        not separator
        or not source
        or letter not in ("B", "E")
        or (times and (not count.isdigit() or not 1 <= int(count) <= 8))
    ):
        raise SystemExit(
            f"--model {text!r}: expected LABEL=NAME_OR_FILE:B or :E, optionally with xN "
            "(N = 1-8 flips and rotations, e.g. :Bx8)"
        )
    return label, source, letter == "E", int(count) if times else 1


def downscaled(pair, factor: int):
    """``pair`` box-averaged over ``factor x factor`` blocks, both sides rounded to 8 bits."""
    if factor == 1:
        return pair
    return pair._replace(
        noisy=box_downscale(pair.noisy, factor, levels=255),
        clean=box_downscale(pair.clean, factor, levels=255),
    )


def _run(method, pair, refine: bool, ensemble: int = 1) -> dict:
    height, width = pair.noisy.shape[-2:]
    plan = plan_tiles(method, height, width, refine=refine, tile=None)
    start = time.perf_counter()
    out = denoise_image(method, pair.noisy, refine=refine, plan=plan, ensemble=ensemble)
    return _score(out, pair.clean, time.perf_counter() - start)


def _score(image: torch.Tensor, clean: torch.Tensor, seconds: float) -> dict:
    a, b = image[None].clamp(0, 1), clean[None]
    return {
        "psnr": float(psnr(a, b)[0]),
        "ssim": float(ssim(a, b)[0]),
        "seconds": seconds,
    }


def _mean(values: list[dict], key: str) -> float:
    return statistics.fmean(v[key] for v in values)


def _markdown(report: dict) -> str:
    lines = []
    for key, data in report["datasets"].items():
        lines += [
            f"### {key} ({data['images']} images, {data['note']})",
            "",
            "| method | PSNR (dB) | SSIM | s / image |",
            "|---|---:|---:|---:|",
        ]
        for label, row in data["rows"].items():
            seconds = f"{row['seconds_per_image']:.2f}" if row["seconds_per_image"] else "–"
            lines.append(f"| {label} | {row['psnr']:.2f} | {row['ssim']:.4f} | {seconds} |")
        lines.append("")
    for key, seconds in report.get("adapt_seconds", {}).items():
        lines.append(f"Adaptation on {key}: {seconds:.0f} s for all images together.")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
