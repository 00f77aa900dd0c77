"""How well each number of the no-reference quality report tracks the true error.

For images with a ground truth (CC15, the PolyU crops, and synthetic camera noise on the
scikit-image photos), outputs of varying quality and kinds of failure are made from one noisy
input: the shipped student, the shipped teacher in B and E, the student blurred (over-
smoothing, Gaussian sigma 0.6 / 1.0 / 1.6), partial denoising ``noisy * (1 - a) + student * a``
(``a`` = 0.25 / 0.5 / 0.75: noise left), the student with an added checkerboard of +-A levels
at the PD frequency (A = 0.5 / 1 / 2 / 4), a colour offset (+2 red, -1.5 blue levels) and a
low-frequency colour wave (3 levels, period 128 px, red), and the noisy image itself. BM3D is
not used (the bm3d package is not installed here). Each output is rounded to 8 bits, as a
file would be, and measured by :func:`amsnet.no_reference.assess` from ``noisy`` and
``output`` only; the clean image gives the matching truths:

* detail lost: ``1 - <hp(clean), hp(output)> / <hp(clean), hp(clean)>`` with ``hp(x) = x -
  blur(x, 1.5)``: the share of the clean image's fine detail missing from the output (noise
  left in the output does not count: it is uncorrelated with the clean image);
* noise left: the noise estimator of the report applied to ``output - clean`` in the flattest
  tenth of the blocks of the *clean* image; input noise: the same on ``noisy - clean``;
* colour shift: the mean, and the RMS of 32x32-block means, of ``output - clean`` per channel;
* checkerboard: the period-``pd_factor`` amplitude of ``output - clean`` (and, for the
  injected cases, the injected amplitude).

It prints Spearman and Pearson correlations per data set and pooled, and the share of each
kind of output that each warning of the summary flags, and writes everything to ``--output``
(JSON). Run it under the shared lock (``flock /tmp/amsnet-torch.lock``); the default run takes
about 5 minutes on 2 CPU cores.

    python benchmarks/no_reference_validation.py -o no_reference_validation.json
    python benchmarks/no_reference_validation.py -o v.json --limit 10 --datasets cc15
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch

import amsnet
from amsnet.atomic import atomic_path, check_new_output
from amsnet.data.camera_noise import camera_noise
from amsnet.data.io import from_uint8, read_image
from amsnet.data.noise import image_seed
from amsnet.inference import denoise_image, plan_tiles
from amsnet.losses import gaussian_blur
from amsnet.metrics import psnr
from amsnet.no_reference import _Blocks, _periodic_peak, _plane_residual_variance, assess

DATASETS = ("cc15", "polyu", "synthetic")
SYNTHETIC_PHOTOS = ("astronaut", "chelsea", "coffee")
SYNTHETIC_LEVELS = ("medium", "high")
PD_FACTOR = 2
LEVELS = 255.0

# (report column, truth, which outputs): the pairs whose correlation is measured.
PAIRS = (
    ("input_noise_sigma", "true_input_noise", "student"),
    ("noise_left_sigma", "true_noise_left", "all"),
    ("residual_structure_gain", "true_detail_lost", "all"),
    ("residual_acf_lag1", "true_detail_lost", "all"),
    ("residual_acf_lag2", "true_detail_lost", "all"),
    ("mean_shift", "true_mean_shift", "all"),
    ("lowpass_shift", "true_lowpass_shift", "all"),
    ("checkerboard_level", "true_checkerboard", "all"),
    ("checkerboard_level", "injected_checkerboard", "checker"),
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", type=Path, required=True, help="JSON report")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--limit", type=int, default=30, help="at most this many pairs per set")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--overwrite", action="store_true")
    args = parser.parse_args(argv)
    check_new_output(args.output, overwrite=args.overwrite)
    torch.set_num_threads(2)
    start = time.perf_counter()
    student = amsnet.load("student-nafnet", device="cpu")
    teacher = amsnet.load("amsnet-nafnet-p", device="cpu")
    rows: list[dict[str, float | str]] = []
    for dataset in args.datasets:
        for name, noisy, clean in _pairs(dataset, args.data, args.limit, args.seed):
            for label, family, output in _outputs(noisy, student, teacher, args.seed):
                rows.extend(_measure(dataset, name, label, family, noisy, clean, output))
        print(f"{dataset}: done at {time.perf_counter() - start:.0f} s", file=sys.stderr)
    table = _correlations(rows)
    flags = _flag_rates(rows)
    _print(table, flags)
    report = {
        "command": " ".join(sys.argv),
        "seconds": round(time.perf_counter() - start, 1),
        "pd_factor": PD_FACTOR,
        "correlations": table,
        "warning_rates": flags,
        "rows": rows,
    }
    with atomic_path(args.output) as tmp:
        tmp.write_text(json.dumps(report, indent=1))
    print(f"wrote {args.output} ({len(rows)} rows) in {report['seconds']:.0f} s")
    return 0


def _pairs(
    dataset: str, root: Path, limit: int, seed: int
) -> Iterator[tuple[str, torch.Tensor, torch.Tensor]]:
    """``(name, noisy, clean)``, float ``(3, H, W)`` in ``[0, 1]``."""
    if dataset == "synthetic":
        from skimage import data

        for photo in SYNTHETIC_PHOTOS:
            image = from_uint8(getattr(data, photo)())
            for level in SYNTHETIC_LEVELS:
                name = f"{photo}-{level}"
                noisy, clean, _ = camera_noise(
                    image[None], seed=image_seed(seed, name), iso_like_level=level
                )
                yield name, _rounded(noisy[0]), _rounded(clean[0])
        return
    folder = root / dataset
    if not folder.is_dir():
        raise SystemExit(f"{folder} is missing; give --data or leave {dataset} out of --datasets")
    with (folder / "pairs.csv").open() as handle:
        pairs = list(csv.DictReader(handle))
    if dataset == "polyu":  # spread the subset over the cameras and scenes
        pairs = pairs[:: max(1, len(pairs) // limit)]
    for pair in pairs[:limit]:
        noisy = read_image(folder / pair["noisy"]).pixels
        clean = read_image(folder / pair["gt"]).pixels
        yield pair["pair_id"], noisy, clean


def _rounded(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0, 1) * LEVELS) / LEVELS


def _outputs(
    noisy: torch.Tensor, student, teacher, seed: int
) -> Iterator[tuple[str, str, torch.Tensor]]:
    """``(label, family, output)`` for one noisy image (see the module docstring)."""

    def run(method, refine: bool) -> torch.Tensor:
        plan = plan_tiles(method, *noisy.shape[-2:], refine=refine)
        return denoise_image(method, noisy, refine=refine, seed=seed, plan=plan)

    base = _rounded(run(student, False))
    yield "noisy", "noisy", noisy
    yield "student", "student", base
    yield "teacher B", "teacher", _rounded(run(teacher, False))
    yield "teacher E", "teacher", _rounded(run(teacher, True))
    for sigma in (0.6, 1.0, 1.6):
        yield f"blur {sigma}", "blur", _rounded(gaussian_blur(base[None], sigma)[0])
    for share in (0.25, 0.5, 0.75):
        yield f"partial {share}", "partial", _rounded(noisy * (1 - share) + base * share)
    rows, columns = torch.meshgrid(
        torch.arange(noisy.shape[-2]), torch.arange(noisy.shape[-1]), indexing="ij"
    )
    checker = 1.0 - 2.0 * ((rows + columns) % 2).float()
    for amplitude in (0.5, 1.0, 2.0, 4.0):
        yield f"checker {amplitude}", "checker", _rounded(base + amplitude / LEVELS * checker)
    offset = torch.tensor([2.0, 0.0, -1.5])[:, None, None] / LEVELS
    yield "colour offset", "colour", _rounded(base + offset)
    wave = torch.zeros_like(base)
    wave[0] = 3.0 / LEVELS * torch.sin(2 * math.pi * columns.float() / 128)
    yield "colour wave", "colour", _rounded(base + wave)


def _measure(
    dataset: str,
    name: str,
    label: str,
    family: str,
    noisy: torch.Tensor,
    clean: torch.Tensor,
    output: torch.Tensor,
) -> list[dict[str, float | str]]:
    """One row per channel (the per-channel numbers differ; the others repeat)."""
    report = assess(noisy, output, pd_factor=PD_FACTOR).as_row()
    x, y, z = noisy * LEVELS, clean * LEVELS, output * LEVELS
    error = z - y
    blocks = _Blocks(x, y)  # structure from the clean image
    flat = blocks.flat

    def flat_sigma(difference: torch.Tensor) -> float:
        variance = _plane_residual_variance(difference, 16).mean(dim=0)[blocks.valid]
        return float(variance[flat].median().sqrt())

    detail = y - gaussian_blur(y[None], 1.5)[0]
    kept = z - gaussian_blur(z[None], 1.5)[0]
    detail_lost = 1.0 - float((detail * kept).sum() / detail.square().sum())
    lowpass = torch.nn.functional.avg_pool2d(error[None], 32)[0]
    common = {
        "dataset": dataset,
        "image": name,
        "output": label,
        "family": family,
        "psnr": float(psnr(output[None], clean[None])),
        "true_input_noise": flat_sigma(x - y),
        "true_noise_left": flat_sigma(error),
        "true_detail_lost": detail_lost,
        "true_checkerboard": _periodic_peak(error, PD_FACTOR)[0],
        "injected_checkerboard": float(label.split()[1]) if family == "checker" else 0.0,
        **{k: v for k, v in report.items() if k[-2:] not in ("_r", "_g", "_b")},
    }
    rows = []
    for channel, letter in enumerate("rgb"):
        rows.append(
            {
                **common,
                "channel": letter,
                "mean_shift": report[f"mean_shift_{letter}"],
                "lowpass_shift": report[f"lowpass_shift_{letter}"],
                "true_mean_shift": float(error[channel].mean()),
                "true_lowpass_shift": float(lowpass[channel].square().mean().sqrt()),
            }
        )
    return rows


def _ranks(values: np.ndarray) -> np.ndarray:
    order = np.argsort(values, kind="stable")
    ranks = np.empty(len(values))
    ranks[order] = np.arange(len(values))
    # Ties share their mean rank.
    for value in np.unique(values[np.r_[False, np.diff(np.sort(values)) == 0]]):
        ranks[values == value] = ranks[values == value].mean()
    return ranks


def _pearson(a: np.ndarray, b: np.ndarray) -> float:
    if len(a) < 3 or a.std() == 0 or b.std() == 0:
        return float("nan")
    return float(np.corrcoef(a, b)[0, 1])


def _correlations(rows: list[dict[str, float | str]]) -> list[dict[str, object]]:
    table = []
    for column, truth, which in PAIRS:
        per_channel = column in ("mean_shift", "lowpass_shift")
        for dataset in (*DATASETS, "pooled"):
            chosen = [
                r
                for r in rows
                if (dataset == "pooled" or r["dataset"] == dataset)
                and (per_channel or r["channel"] == "r")
                and (which == "all" or r["family"] == which)
            ]
            if len(chosen) < 3:
                continue
            a = np.array([r[column] for r in chosen], dtype=float)
            b = np.array([r[truth] for r in chosen], dtype=float)
            table.append(
                {
                    "measure": column,
                    "truth": truth,
                    "outputs": which,
                    "dataset": dataset,
                    "n": len(chosen),
                    "spearman": _pearson(_ranks(a), _ranks(b)),
                    "pearson": _pearson(a, b),
                    # Same units (levels) except for the detail measures.
                    "median_abs_error": float("nan")
                    if truth == "true_detail_lost"
                    else float(np.median(np.abs(a - b))),
                }
            )
    return table


def _flag_rates(rows: list[dict[str, float | str]]) -> dict[str, dict[str, float]]:
    """Per kind of output (its label), the share of images each summary warning flags."""
    from amsnet.no_reference import NoReferenceReport

    names = {f for f in NoReferenceReport.__dataclass_fields__}
    by_family: dict[str, list[list[str]]] = {}
    images: dict[tuple[str, str, str], dict[str, float]] = {}
    for r in rows:
        key = (str(r["dataset"]), str(r["image"]), str(r["output"]))
        values = images.setdefault(key, {"output": r["output"]})  # type: ignore[dict-item]
        for k, v in r.items():
            if k in names:
                values[k] = float(v)  # type: ignore[arg-type]
        letter = r["channel"]
        values[f"mean_shift_{letter}"] = float(r["mean_shift"])  # type: ignore[arg-type]
        values[f"lowpass_shift_{letter}"] = float(r["lowpass_shift"])  # type: ignore[arg-type]
    for values in images.values():
        family = str(values.pop("output"))
        report = NoReferenceReport(**{k: values[k] for k in names})
        by_family.setdefault(family, []).append(report.warnings())
    warnings = ("detail removed", "noise left", "checkerboard visible", "colour shift")
    return {
        family: {w: sum(w in found for found in lists) / len(lists) for w in warnings}
        for family, lists in by_family.items()
    }


def _print(table: list[dict[str, object]], flags: dict[str, dict[str, float]]) -> None:
    print(f"{'measure':25} {'truth':22} {'outputs':8} {'data':9} {'n':>4} {'rho':>6} {'r':>6}")
    for t in table:
        print(
            f"{t['measure']:25} {t['truth']:22} {t['outputs']:8} {t['dataset']:9} "
            f"{t['n']:>4} {t['spearman']:>6.2f} {t['pearson']:>6.2f}"
        )
    print("\nshare of images flagged, per kind of output")
    warnings = ("detail removed", "noise left", "checkerboard visible", "colour shift")
    print(f"{'output':14} " + " ".join(f"{w:>21}" for w in warnings))
    for family, rates in flags.items():
        print(f"{family:14} " + " ".join(f"{rates[w]:>21.2f}" for w in warnings))


if __name__ == "__main__":
    sys.exit(main())
