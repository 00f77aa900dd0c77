"""What the strength control (``--strength``) does to PSNR, per kind of photo.

    python benchmarks/strength_sweep.py --strengths 1 0.9 0.8 0.7 0.6 0.5

The default model (or ``--model NAME_OR_FILE``) denoises each photo once; the output is then
blended with its input at each strength (``noisy + s * (output - noisy)``,
:mod:`amsnet.ops.strength`) and scored against the ground truth, on 8-bit-rounded images
(the AMSNet protocol), mean over photos:

* ``cc15``: CC15 at full size (real noise, cameras never trained on);
* ``cc15/3``: CC15 averaged over 3x3 blocks (a photo resized for the web; sharper per pixel);
* ``synthetic``: the demo's scikit-image photos (astronaut, chelsea, coffee) with synthetic
  camera noise (``--level``; the known over-smoothing case, docs/models.md).

The ground truth chooses nothing here: every strength is reported, so the table shows what a
user's choice costs or gains on each kind of photo.
"""

from __future__ import annotations

import argparse
import statistics
import sys

import torch

from amsnet.data.benchmarks import load_pairs
from amsnet.inference import denoise_image, load_for_inference, plan_tiles
from amsnet.metrics import psnr
from amsnet.ops.downscale import box_downscale
from amsnet.ops.strength import apply_strength, check_strength
from amsnet.studies.demo import demo_photos
from amsnet.zoo import DEFAULT_MODEL

CC15 = "../shared/data/cc15"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=DEFAULT_MODEL, help="a shipped model or weights file")
    parser.add_argument(
        "--strengths", type=float, nargs="+", default=[1.0, 0.9, 0.8, 0.7, 0.6, 0.5]
    )
    parser.add_argument("--level", default="medium", help="synthetic noise level")
    parser.add_argument("--sets", nargs="+", default=["cc15", "cc15/3", "synthetic"])
    args = parser.parse_args(argv)
    strengths = [check_strength(s, "--strengths") for s in args.strengths]
    method = load_for_inference(args.model, "cpu")
    print(f"model: {args.model}; PSNR (dB), mean over photos")
    print("| photos | noisy | " + " | ".join(f"s = {s:g}" for s in strengths) + " |")
    print("|---|---:|" + "---:|" * len(strengths))
    for name in args.sets:
        pairs = _pairs(name, args.level)
        noisy_scores = [_score(noisy, clean) for noisy, clean in pairs]
        by_strength: dict[float, list[float]] = {s: [] for s in strengths}
        for noisy, clean in pairs:
            height, width = noisy.shape[-2:]
            plan = plan_tiles(method, height, width, refine=False, tile=None)
            out = denoise_image(method, noisy, plan=plan)
            for s in strengths:
                by_strength[s].append(_score(apply_strength(out, noisy, s), clean))
        cells = " | ".join(f"{statistics.fmean(v):.2f}" for v in by_strength.values())
        label = f"{name} ({len(pairs)})"
        print(f"| {label} | {statistics.fmean(noisy_scores):.2f} | {cells} |", flush=True)
    return 0


def _pairs(name: str, level: str) -> list[tuple[torch.Tensor, torch.Tensor]]:
    if name == "synthetic":
        photos = demo_photos("synthetic", level=level)
        return list(zip(photos.noisy, photos.clean, strict=True))
    if name in ("cc15", "cc15/3"):
        factor = 3 if name == "cc15/3" else 1
        pairs = []
        for pair in load_pairs("cc", CC15):
            noisy, clean = pair.noisy, pair.clean
            if factor > 1:
                noisy = box_downscale(noisy, factor, levels=255)
                clean = box_downscale(clean, factor, levels=255)
            pairs.append((noisy, clean))
        return pairs
    raise SystemExit(f"--sets: unknown set {name!r}; choose from cc15, cc15/3, synthetic")


def _score(image: torch.Tensor, clean: torch.Tensor) -> float:
    return float(psnr(image[None].clamp(0, 1), clean[None])[0])  # rounds to 8 bits first


if __name__ == "__main__":
    sys.exit(main())
