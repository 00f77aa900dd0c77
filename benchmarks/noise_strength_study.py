"""Students side by side on every kind of photo the default model must not harm.

A student trained at the pool's noise strength only takes weak noise for strong and removes
detail with it (``docs/models.md``, "Weak noise"). This scores each model given on: CC15 at
full size and box-averaged 2x and 3x as ``zoo_quality.py --downscale`` makes them (never
trained on), every third PolyU crop (in-scene), and four scikit-image photos with synthetic
camera noise at the low, medium and high levels (plus the astronaut crop of
``tests/integration/test_zoo.py``). One row per model, PSNR in dB, the mean over the photos
of a set, and the worst change from the noisy input on any photo.

    python benchmarks/noise_strength_study.py --model shipped=student-nafnet \\
        --model scaled=runs/zoo-student-ns/last.safetensors --json ns.json

About 1 minute per model on 2 CPU cores (backbones in fp32). Needs ``../shared/data`` for
CC15 and PolyU (those columns are skipped without it).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import amsnet
from amsnet.data.benchmarks import EvalPair, load_pairs
from amsnet.data.camera_noise import camera_noise
from amsnet.data.photos import skimage_photos, with_camera_noise
from amsnet.metrics import psnr

# The pairs of zoo_quality.py --downscale (benchmarks/ is on sys.path).
from zoo_quality import downscaled

PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def the_tests_crop() -> EvalPair:
    from skimage import data as skimage_data

    clean = torch.from_numpy(skimage_data.astronaut()[96:288, 160:352].copy())
    clean = clean.permute(2, 0, 1).float().div(255)[None]
    noisy, target, _ = camera_noise(clean, seed=0, iso_like_level="medium")
    return EvalPair("astronaut crop", noisy[0], target[0])


def benchmark_sets(data: Path) -> dict[str, list[EvalPair]]:
    sets: dict[str, list[EvalPair]] = {}
    if (data / "cc15").is_dir():
        cc15 = list(load_pairs("cc", data / "cc15"))
        sets["CC15"] = cc15
        sets["CC15 /2"] = [downscaled(pair, 2) for pair in cc15]
        sets["CC15 /3"] = [downscaled(pair, 3) for pair in cc15]
    if (data / "polyu/CroppedImages").is_dir():
        sets["PolyU /3rd"] = list(load_pairs("polyu", data / "polyu/CroppedImages"))[::3]
    for level in ("low", "medium", "high"):
        triples = with_camera_noise(skimage_photos(PHOTOS), level, 0)
        sets[f"camera {level}"] = [EvalPair(n, noisy, clean) for n, noisy, clean in triples]
    sets["test crop"] = [the_tests_crop()]
    return sets


def score(model, pairs: list[EvalPair]) -> tuple[float, float, float]:
    """Mean noisy PSNR, mean denoised PSNR, worst per-photo gain."""
    noisy, denoised = [], []
    for pair in pairs:
        with torch.no_grad():
            out = amsnet.denoise(pair.noisy, model, precision="fp32").clamp(0, 1)
        noisy.append(float(psnr(pair.noisy[None], pair.clean[None])))
        denoised.append(float(psnr(out[None], pair.clean[None])))
    gains = np.subtract(denoised, noisy)
    return float(np.mean(noisy)), float(np.mean(denoised)), float(gains.min())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--model", action="append", required=True, help="LABEL=NAME_OR_FILE, repeatable"
    )
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, help="write every figure here")
    args = parser.parse_args()
    sets = benchmark_sets(args.data)
    results: dict[str, dict[str, list[float]]] = {}
    noisy_row = {}
    for spec in args.model:
        label, _, name = spec.partition("=")
        model = amsnet.load(name or label)
        results[label] = {}
        for set_name, pairs in sets.items():
            noisy, mean, worst = score(model, pairs)
            noisy_row[set_name] = noisy
            results[label][set_name] = [mean, worst]
    print("| model | " + " | ".join(sets) + " |")
    print("|---|" + "---:|" * len(sets))
    print("| noisy input | " + " | ".join(f"{noisy_row[s]:.2f}" for s in sets) + " |")
    for label, row in results.items():
        cells = [f"{row[s][0]:.2f} ({row[s][1]:+.1f})" for s in sets]
        print(f"| {label} | " + " | ".join(cells) + " |")
    print("(mean PSNR in dB; in brackets the worst change from the noisy input on one photo)")
    if args.json:
        args.json.write_text(json.dumps({"noisy": noisy_row, "models": results}, indent=1))


if __name__ == "__main__":
    main()
