"""Evaluation on paired data with the published protocols: per-image and summary figures.

Protocol (the AMSNet paper's, see ``docs/concepts.md`` and :mod:`amsnet.metrics`): each image
is denoised whole, both images are quantised to 8 bits (round half to even), PSNR is computed
over all pixels and channels, SSIM in both conventions (``matlab``: the official AMSNet one,
``skimage``: AP-BSN's), and the dataset figure is the mean over images. Because the masks and
R3 are random, every image is denoised once per seed; the summary gives the mean and the
standard deviation *over seeds* of the per-seed dataset means.
"""

from __future__ import annotations

import csv
import functools
import json
import logging
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from amsnet.atomic import atomic_path
from amsnet.data.benchmarks import EvalPair
from amsnet.data.protocols import protocol_for
from amsnet.errors import ConfigError, ShapeError
from amsnet.metrics import psnr, ssim
from amsnet.ops.dihedral import check_transform_count, ensemble_mean
from amsnet.precision import backbone_dtype, precision_name
from amsnet.version import __version__

log = logging.getLogger(__name__)


@dataclass
class ImageResult:
    """Figures of one image and one seed."""

    name: str
    seed: int
    psnr: float
    ssim_matlab: float
    ssim_skimage: float
    seconds: float
    megapixels: float


@dataclass
class EvaluationReport:
    """Everything an evaluation measured, with the settings needed to reproduce it."""

    dataset: str
    variant: str
    seeds: list[int]
    device: str
    trained_on_test_images: bool
    model: dict[str, Any]
    weights: str | None = None
    precision: str = "fp32"
    """The backbone's precision (:mod:`amsnet.precision`): part of the protocol."""
    ensemble: int = 1
    """Flips and rotations each result is the mean of (:mod:`amsnet.ops.dihedral`; 1: none):
    part of the protocol, shown as ``B x8`` in the variant column."""
    rows: list[ImageResult] = field(default_factory=list)
    peak_memory_mib: float = 0.0
    protocol: str = ""
    """How the figures were obtained (:func:`amsnet.data.protocols.protocol_for`); empty means
    the label of ``dataset``, e.g. "PolyU, local with ground truth (PSNR/SSIM computed by
    amsnet)". Figures of different protocols must not share a table."""
    metrics: str = (
        "PSNR and SSIM on 8-bit quantised images (round half to even), whole images, no border "
        "crop; SSIM 'matlab' = 11x11 Gaussian sigma 1.5 (official AMSNet), 'skimage' = 7x7 "
        "uniform (AP-BSN); mean over images, then mean and std over seeds"
    )
    amsnet_version: str = __version__

    def __post_init__(self) -> None:
        if not self.protocol:
            self.protocol = protocol_for(self.dataset)

    @property
    def variant_label(self) -> str:
        """The variant and, for a self-ensemble, its size: ``"E"``, ``"B x8"``."""
        return self.variant + (f" x{self.ensemble}" if self.ensemble > 1 else "")

    def per_seed(self) -> dict[int, dict[str, float]]:
        """Dataset means of every seed."""
        table: dict[int, dict[str, float]] = {}
        for seed in self.seeds:
            rows = [r for r in self.rows if r.seed == seed]
            if rows:
                table[seed] = {
                    "psnr": statistics.fmean(r.psnr for r in rows),
                    "ssim_matlab": statistics.fmean(r.ssim_matlab for r in rows),
                    "ssim_skimage": statistics.fmean(r.ssim_skimage for r in rows),
                }
        return table

    def summary(self) -> dict[str, Any]:
        """Mean and standard deviation over seeds, time per megapixel, image count."""
        per_seed = self.per_seed()
        out: dict[str, Any] = {"images": len({r.name for r in self.rows}), "seeds": len(per_seed)}
        for key in ("psnr", "ssim_matlab", "ssim_skimage"):
            values = [v[key] for v in per_seed.values()]
            out[key] = statistics.fmean(values) if values else math.nan
            out[f"{key}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        seconds = sum(r.seconds for r in self.rows)
        megapixels = sum(r.megapixels for r in self.rows)
        out["seconds_per_megapixel"] = seconds / megapixels if megapixels else math.nan
        out["peak_memory_mib"] = self.peak_memory_mib
        return out

    def to_json(self, path: str | os.PathLike[str]) -> Path:
        """Write settings, summary, per-seed means and per-image rows as JSON (atomically)."""
        payload = asdict(self)
        payload["summary"] = self.summary()
        payload["per_seed"] = {str(k): v for k, v in self.per_seed().items()}
        with atomic_path(path) as tmp:
            tmp.write_text(json.dumps(payload, indent=2, allow_nan=True))
        return Path(path)

    def to_csv(self, path: str | os.PathLike[str]) -> Path:
        """Write one row per image and seed, each with the protocol (atomically)."""
        names = [*ImageResult.__dataclass_fields__, "protocol"]
        with atomic_path(path) as tmp, tmp.open("w", newline="") as handle:
            writer = csv.DictWriter(handle, fieldnames=names)
            writer.writeheader()
            for row in self.rows:
                writer.writerow({**asdict(row), "protocol": self.protocol})
        return Path(path)

    def to_markdown(self) -> str:
        """A one-line markdown table of the summary."""
        s = self.summary()
        return (
            "| dataset | variant | precision | images | seeds | PSNR (dB) | SSIM matlab "
            "| SSIM skimage | s/MP | trained on test | protocol |\n"
            "|---|---|---|---:|---:|---:|---:|---:|---:|---|---|\n"
            f"| {self.dataset} | {self.variant_label} | {self.precision} "
            f"| {s['images']} | {s['seeds']} "
            f"| {s['psnr']:.3f} ± {s['psnr_std']:.3f} "
            f"| {s['ssim_matlab']:.4f} ± {s['ssim_matlab_std']:.4f} "
            f"| {s['ssim_skimage']:.4f} ± {s['ssim_skimage_std']:.4f} "
            f"| {s['seconds_per_megapixel']:.2f} "
            f"| {'yes' if self.trained_on_test_images else 'no'} | {self.protocol} |"
        )


def evaluate(
    method: torch.nn.Module,
    pairs: Iterable[EvalPair],
    *,
    dataset: str,
    seeds: Iterable[int] = (0,),
    refine: bool = False,
    device: torch.device | str = "cpu",
    trained_on_test_images: bool = False,
    weights: str | None = None,
    save_dir: str | os.PathLike[str] | None = None,
    progress: Callable[[int, str], None] | None = None,
    variant: str | None = None,
    protocol: str | None = None,
    ensemble: int = 1,
) -> EvaluationReport:
    """Denoise every pair once per seed and measure it.

    Args:
        method: an :class:`~amsnet.AMSNet` or :class:`~amsnet.APBSN` already on ``device``.
        pairs: the data (see :func:`load_pairs`).
        dataset: a name for the report.
        seeds: one denoising per seed (masks and R3 are random).
        refine: apply R3 (variant "E").
        device: where ``method`` lives.
        trained_on_test_images: record that the model saw these noisy images in training
            (fully self-supervised on the benchmark); reports must say so.
        weights: the weights path, for the report.
        save_dir: also write the denoised images of the first seed there (8-bit PNG) with
            ``noisy | denoised | clean`` comparison crops.
        progress: ``progress(index, name)`` after each image.
        variant: the label of the report (default ``"E"`` with R3, else ``"B"``).
        protocol: how the figures were obtained, for the report (default: the label of
            ``dataset``, :func:`amsnet.data.protocols.protocol_for`).
        ensemble: average each result over this many flips and rotations of the image (1-8,
            :mod:`amsnet.ops.dihedral`; the report's ``ensemble`` says so).

    Returns:
        :class:`EvaluationReport`.
    """
    from amsnet.build import model_config

    device = torch.device(device)
    seeds = [int(s) for s in seeds]
    if not seeds:
        raise ConfigError("give at least one seed")
    try:
        model = model_config(method)
    except ConfigError:
        model = {"method": method.method_config(), "net": {"name": type(method.backbone).__name__}}
    report = EvaluationReport(
        dataset=dataset,
        variant=variant or ("E" if refine else "B"),
        seeds=seeds,
        device=str(device),
        trained_on_test_images=trained_on_test_images,
        model=model,
        weights=weights,
        precision=precision_name(backbone_dtype(method)),
        ensemble=check_transform_count(ensemble, "ensemble"),
        protocol=protocol or "",
    )
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    for index, pair in enumerate(pairs):
        noisy = pair.noisy.unsqueeze(0).to(device)
        clean = pair.clean.unsqueeze(0).to(device)
        megapixels = noisy.shape[-1] * noisy.shape[-2] / 1e6
        for seed in seeds:
            generator = torch.Generator(device=device).manual_seed(seed)
            _synchronize(device)
            start = time.perf_counter()
            denoised = ensemble_mean(
                functools.partial(_denoise_one, method, generator, refine), noisy, ensemble
            )
            _synchronize(device)
            seconds = time.perf_counter() - start
            report.rows.append(
                ImageResult(
                    name=pair.name,
                    seed=seed,
                    psnr=float(psnr(denoised, clean)),
                    ssim_matlab=_ssim(denoised, clean, "matlab"),
                    ssim_skimage=_ssim(denoised, clean, "skimage"),
                    seconds=seconds,
                    megapixels=megapixels,
                )
            )
            if save_dir is not None and seed == seeds[0]:
                _save(Path(save_dir), pair, denoised[0].cpu())
        if progress is not None:
            progress(index, pair.name)
    report.peak_memory_mib = _peak_memory_mib(device)
    return report


def _denoise_one(
    method: torch.nn.Module,
    generator: torch.Generator,
    refine: bool,
    noisy: torch.Tensor,
    transform: int,
) -> torch.Tensor:
    return method.denoise(noisy, generator=generator, refine=refine)


def _ssim(denoised: torch.Tensor, clean: torch.Tensor, convention: str) -> float:
    """SSIM, or NaN for images smaller than the convention's window (then logged)."""
    try:
        return float(ssim(denoised, clean, convention=convention))
    except ShapeError as error:
        log.warning("SSIM not computed: %s", error)
        return math.nan


def _save(folder: Path, pair: EvalPair, denoised: torch.Tensor) -> None:
    from amsnet.data.io import write_image

    target = folder / f"{pair.name}.png"
    write_image(target, denoised.clamp(0, 1), bit_depth=8, overwrite=True)
    h, w = pair.noisy.shape[-2:]
    size = min(128, h, w)
    top, left = (h - size) // 2, (w - size) // 2
    crops = [x[:, top : top + size, left : left + size] for x in (pair.noisy, denoised, pair.clean)]
    strip = torch.cat([c.clamp(0, 1) for c in crops], dim=-1)
    write_image(folder / f"{pair.name}_compare.png", strip, bit_depth=8, overwrite=True)


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _peak_memory_mib(device: torch.device) -> float:
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    # Linux reports kibibytes, macOS bytes.
    return peak / 2**20 if sys.platform == "darwin" else peak / 2**10
