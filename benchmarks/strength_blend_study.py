"""Can a no-reference estimate choose how much of the residual to blend back?

The default student over-smooths synthetic camera noise (issue 12): ``out + a (noisy - out)``
with ``a`` chosen with the clean image recovers it. This study denoises CC15, a third of the
PolyU crops and four scikit-image photos with synthetic camera noise (low, medium, high), then
for each blend ``a`` in 0..0.7 prints the PSNR and the no-reference measures a strength control
could use (:func:`amsnet.no_reference.assess`: the input's noise estimate, the noise left, the
residual-structure gain) beside the residual's std. A rule is usable only if these features
separate the images whose best ``a`` is large from those whose best ``a`` is 0.

    python benchmarks/strength_blend_study.py --json blend.json

About 4 minutes on 2 CPU cores. Needs ``../shared/data`` for CC15 and PolyU (skipped without).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

import amsnet
from amsnet.data.benchmarks import EvalPair, load_pairs
from amsnet.data.photos import skimage_photos, with_camera_noise
from amsnet.metrics import psnr
from amsnet.no_reference import assess
from amsnet.ops.strength import apply_strength

BLENDS = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7)
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket")


def benchmark_sets(data: Path) -> dict[str, list[EvalPair]]:
    sets: dict[str, list[EvalPair]] = {}
    if (data / "cc15").is_dir():
        sets["cc15"] = list(load_pairs("cc", data / "cc15"))
    if (data / "polyu/CroppedImages").is_dir():
        sets["polyu (every 3rd)"] = list(load_pairs("polyu", data / "polyu/CroppedImages"))[::3]
    for level in ("low", "medium", "high"):
        triples = with_camera_noise(skimage_photos(PHOTOS), level, 0)
        sets[f"camera {level}"] = [EvalPair(n, noisy, clean) for n, noisy, clean in triples]
    return sets


def measure(model, pair: EvalPair) -> dict[str, float | str]:
    with torch.no_grad():
        out = amsnet.denoise(pair.noisy, model)
    residual = pair.noisy - out
    row: dict[str, float | str] = {
        "name": pair.name,
        "noisy": float(psnr(pair.noisy[None], pair.clean[None])),
        "residual_std": float(residual.std() * 255),
    }
    for blend in BLENDS:
        # A blend a is the strength 1 - a of amsnet denoise --strength.
        blended = apply_strength(out, pair.noisy, 1.0 - blend).clamp(0, 1)
        report = assess(pair.noisy, blended)
        row[f"psnr_{blend}"] = float(psnr(blended[None], pair.clean[None]))
        row[f"noise_left_{blend}"] = report.noise_left_sigma
        row[f"structure_gain_{blend}"] = report.residual_structure_gain
        row["input_noise"] = report.input_noise_sigma
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="student-nafnet")
    parser.add_argument("--data", type=Path, default=Path("../shared/data"))
    parser.add_argument("--json", type=Path, help="write every row here")
    args = parser.parse_args()
    model = amsnet.load(args.model)
    results = {}
    print(
        "set | noisy | a=0 | best single a | oracle a per image | best a per image | "
        "residual std / input noise | noise left (a=0) / input noise"
    )
    for name, pairs in benchmark_sets(args.data).items():
        rows = [measure(model, pair) for pair in pairs]
        results[name] = rows
        per_blend = {b: np.mean([r[f"psnr_{b}"] for r in rows]) for b in BLENDS}
        best_single = max(per_blend, key=per_blend.get)
        best = [max(BLENDS, key=lambda b, r=r: r[f"psnr_{b}"]) for r in rows]
        oracle = np.mean([max(r[f"psnr_{b}"] for b in BLENDS) for r in rows])
        ratio = [r["residual_std"] / r["input_noise"] for r in rows]
        left = [r["noise_left_0.0"] / r["input_noise"] for r in rows]
        print(
            f"{name} | {np.mean([r['noisy'] for r in rows]):.2f} | {per_blend[0.0]:.2f} | "
            f"{per_blend[best_single]:.2f} (a={best_single}) | {oracle:.2f} | "
            f"{min(best)}-{max(best)} | {min(ratio):.2f}-{max(ratio):.2f} | "
            f"{min(left):.2f}-{max(left):.2f}",
            flush=True,
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    main()
