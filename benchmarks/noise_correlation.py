"""Spatial correlation of real and synthetic sRGB noise, side by side.

For each source it prints the normalised autocorrelation of the noise residual at the lags
(0,1), (1,0), (1,1), (0,2), (2,0) (``amsnet.data.noise.noise_autocorrelation``: ``dy`` rows
down, ``dx`` columns right, per channel, averaged over channels and then over images), the
mean noise standard deviation on the 0-255 scale (per image over all pixels and channels, then
the mean over images, with the range) and the mean PSNR of the noisy image (8-bit, AMSNet
protocol). Sources:

* real noise: PolyU crops (``*_real.JPG`` against ``*_mean.JPG``) and CC15 (``*_real.png``
  against ``*_mean.png``), residual = noisy - mean image;
* ``camera_noise`` (``amsnet.data.camera_noise``) on the clean Kodak24 images at the named
  ISO-like levels, bilinear demosaic (and Malvar at the medium level), without JPEG, with JPEG
  quality 75 on the noisy image, and with it on both images (``jpeg_target=True``, as in
  PolyU); residual = noisy - clean target, one seed per image (``image_seed(seed, file name)``);
* AWGN on Kodak24.

It also times ``camera_noise`` on one 512x512 image on the CPU.

    python benchmarks/noise_correlation.py                  # data in ../shared/data
    python benchmarks/noise_correlation.py --data DIR --seed 0 --awgn-sigma 15
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from amsnet.data.camera_noise import camera_noise
from amsnet.data.noise import add_gaussian_noise, image_seed, noise_autocorrelation
from amsnet.metrics import psnr

LAGS = ((0, 1), (1, 0), (1, 1), (0, 2), (2, 0))
DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


def read_rgb(path: Path) -> torch.Tensor:
    """``(1, 3, H, W)`` float32 in [0, 1] from an 8-bit image file."""
    with Image.open(path) as image:
        array = np.array(image.convert("RGB"))
    return torch.from_numpy(array).permute(2, 0, 1)[None].float() / 255.0


def real_pairs(folder: Path, suffix: str) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """(noisy, mean image) pairs named ``X_real<suffix>`` / ``X_mean<suffix>``."""
    for noisy_path in sorted(folder.glob(f"*_real{suffix}")):
        mean_path = noisy_path.with_name(noisy_path.name.replace("_real", "_mean"))
        if mean_path.is_file():
            yield read_rgb(noisy_path), read_rgb(mean_path)


def summarise(name: str, pairs: Iterable[tuple[torch.Tensor, torch.Tensor]]) -> dict | None:
    """Mean autocorrelation, noise std and PSNR over (noisy, clean) pairs."""
    acfs, stds, psnrs = [], [], []
    for noisy, clean in pairs:
        residual = noisy.double() - clean.double()
        acf = noise_autocorrelation(residual, max_lag=2)
        acfs.append([acf[lag] for lag in LAGS])
        stds.append(float(residual.std()) * 255.0)
        psnrs.append(float(psnr(noisy, clean)[0]))
    if not acfs:
        return None
    return {
        "name": name,
        "count": len(acfs),
        "acf": np.mean(acfs, axis=0).tolist(),
        "std": statistics.fmean(stds),
        "std_range": (min(stds), max(stds)),
        "psnr": statistics.fmean(psnrs),
    }


def synthetic(
    images: list[tuple[str, torch.Tensor]], seed: int, **options: object
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for file_name, clean in images:
        noisy, target, _ = camera_noise(clean, seed=image_seed(seed, file_name), **options)
        yield noisy, target


def awgn(
    images: list[tuple[str, torch.Tensor]], seed: int, sigma: float
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    for file_name, clean in images:
        yield add_gaussian_noise(clean, sigma, seed=seed, names=[file_name]), clean


def print_table(rows: list[dict]) -> None:
    header = "| source | images | " + " | ".join(f"lag {lag}" for lag in LAGS)
    print(header + " | noise std (0-255) | PSNR (dB) |")
    print("|" + "---|" * (len(LAGS) + 4))
    for row in rows:
        acf = " | ".join(f"{value:.3f}" for value in row["acf"])
        low, high = row["std_range"]
        print(
            f"| {row['name']} | {row['count']} | {acf} | {row['std']:.2f} ({low:.1f}-{high:.1f}) "
            f"| {row['psnr']:.2f} |"
        )


def time_camera_noise(seed: int) -> float:
    """Median seconds of ``camera_noise`` on one 512x512 image (after a warm-up call)."""
    clean = torch.rand(1, 3, 512, 512, generator=torch.Generator().manual_seed(seed))
    camera_noise(clean, seed=seed, iso_like_level="medium")
    times = []
    for repeat in range(5):
        start = time.perf_counter()
        camera_noise(clean, seed=seed + repeat, iso_like_level="medium")
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="shared data folder")
    parser.add_argument("--seed", type=int, default=0, help="seed of the synthetic sets")
    parser.add_argument("--awgn-sigma", type=float, default=15.0, help="AWGN sigma (0-255)")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    args = parser.parse_args(argv)
    torch.set_num_threads(args.threads)

    kodak_folder = args.data / "kodak24"
    if not kodak_folder.is_dir():
        print(f"{kodak_folder} is absent; pass --data with the shared data folder", file=sys.stderr)
        return 1
    kodak = [(path.name, read_rgb(path)) for path in sorted(kodak_folder.glob("*.png"))]

    rows = []
    for name, folder, suffix in (
        ("PolyU crops", "polyu/CroppedImages", ".JPG"),
        ("CC15", "cc15", ".png"),
    ):
        row = summarise(name, real_pairs(args.data / folder, suffix))
        if row is not None:
            rows.append(row)
    jpeg_options = {
        "": {},
        ", JPEG q75": {"jpeg_quality": 75},
        ", JPEG q75 both": {"jpeg_quality": 75, "jpeg_target": True},
    }
    for level in ("low", "medium", "high"):
        for suffix, options in jpeg_options.items():
            pairs = synthetic(kodak, args.seed, iso_like_level=level, **options)
            rows.append(summarise(f"camera {level}{suffix}", pairs))
    for quality in (None, 75):
        label = "camera medium, Malvar" + (f", JPEG q{quality}" if quality else "")
        pairs = synthetic(
            kodak, args.seed, iso_like_level="medium", jpeg_quality=quality, demosaic="malvar"
        )
        rows.append(summarise(label, pairs))
    rows.append(
        summarise(f"AWGN sigma {args.awgn_sigma:g}", awgn(kodak, args.seed, args.awgn_sigma))
    )
    print_table(rows)
    seconds = time_camera_noise(args.seed)
    print(
        f"\ncamera_noise, one 512x512 image, CPU, {args.threads} thread(s): {seconds * 1e3:.0f} ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
