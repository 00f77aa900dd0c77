"""The quality study's files: one JSON record (and a PNG of the first output) per seed and
method under ``runs/``, written as soon as it exists so a killed study resumes; and the final
``results.csv``, ``summary.{csv,json,md}`` and ``comparison.png``."""

from __future__ import annotations

import csv
import json
import logging
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amsnet.atomic import atomic_path
from amsnet.data.protocols import protocol_for
from amsnet.errors import ConfigError
from amsnet.studies.bench.study_config import ALL_METHODS, LABELS, StudyConfig
from amsnet.studies.comparison import comparison_sheet

log = logging.getLogger(__name__)


# -- files --------------------------------------------------------------------------------


def claim_folder(folder: Path, config: StudyConfig) -> None:
    """Record the settings in ``folder/study.json``; refuse a folder of another study."""
    marker = folder / "study.json"
    existing = read_json(marker)
    if existing is not None and existing.get("fingerprint") != config.fingerprint():
        raise ConfigError(
            f"{folder} holds results of a study with other settings ({marker}); choose another "
            "output folder or delete that one"
        )
    write_json(marker, {"fingerprint": config.fingerprint(), "config": config.model_dump()})


def record_path(folder: Path, seed: int, method: str) -> Path:
    return folder / "runs" / f"seed{seed}" / f"{method}.json"


def read_record(folder: Path, seed: int, method: str) -> dict[str, Any] | None:
    return read_json(record_path(folder, seed, method))


FIGURE_IMAGES = 3
"""How many images (evenly spaced over the set) the comparison sheet shows."""


def figure_indices(count: int) -> list[int]:
    """Indices of the images shown in the comparison sheet, out of ``count``."""
    return sorted(
        {round(i * (count - 1) / max(FIGURE_IMAGES - 1, 1)) for i in range(FIGURE_IMAGES)}
    )


def save_record(folder: Path, record: dict[str, Any], outputs: list[torch.Tensor]) -> None:
    """Write a (seed, method) record, after the 8-bit PNGs of its figure images."""
    from amsnet.data.io import write_image

    path = record_path(folder, record["seed"], record["method"])
    for index in figure_indices(len(outputs)):
        target = path.with_name(f"{path.stem}_img{index}.png")
        write_image(target, outputs[index].clamp(0, 1), bit_depth=8, overwrite=True)
    write_json(path, record)


def read_json(path: Path) -> dict[str, Any] | None:
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        return None
    except (json.JSONDecodeError, UnicodeDecodeError):
        log.warning("ignoring unreadable %s (it will be recomputed)", path)
        return None


def write_json(path: Path, data: dict[str, Any]) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(json.dumps(data, indent=2))


def summarise(config: StudyConfig, records: list[dict[str, Any]]) -> dict[str, Any]:
    rows = []
    for method in (m for m in ALL_METHODS if m in config.methods):
        mine = [r for r in records if r["method"] == method]
        values = {key: np.array([r[key] for r in mine]) for key in ("psnr", "ssim")}
        training = [r["training"] for r in mine if "training" in r]
        rows.append(
            {
                "method": method,
                "label": LABELS[method],
                "seeds": len(mine),
                "psnr": float(values["psnr"].mean()),
                # Sample standard deviation over seeds (0 for a single seed).
                "psnr_std": float(values["psnr"].std(ddof=1)) if len(mine) > 1 else 0.0,
                "ssim": float(values["ssim"].mean()),
                "ssim_std": float(values["ssim"].std(ddof=1)) if len(mine) > 1 else 0.0,
                "psnr_to_noisy": _mean_or_none([r["psnr_to_noisy"] for r in mine]),
                "seconds_per_image": float(np.mean([r["seconds_per_image"] for r in mine])),
                "seconds_per_megapixel": float(np.mean([r["seconds_per_megapixel"] for r in mine])),
                "train_cpu_seconds": float(np.mean([t["cpu_seconds"] for t in training]))
                if training
                else 0.0,
                "train_steps": float(np.mean([sum(t["steps"]) for t in training]))
                if training
                else 0.0,
            }
        )
    return {"config": config.model_dump(), "protocol": study_protocol(config), "rows": rows}


def study_protocol(config: StudyConfig) -> str:
    """The protocol label of a study's figures (:func:`amsnet.data.protocols.protocol_for`)."""
    setting = {
        "awgn": f"sigma {config.sigma:g}; " if config.sigma else "",
        "camera": f"level {config.level}; ",
    }.get(config.dataset, "")
    detail = f"{setting}each method trained on these noisy images for the same CPU budget"
    return protocol_for(config.dataset, detail=detail)


def write_results(
    folder: Path,
    config: StudyConfig,
    records: list[dict[str, Any]],
    summary: dict[str, Any],
    clean: list[tuple[str, torch.Tensor]],
) -> None:
    """Write the final files; ``clean`` holds the names and clean ``(3, H, W)`` images of the
    first seed, for the comparison sheet."""
    with atomic_path(folder / "results.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["method", "seed", "image", "psnr", "ssim", "protocol"])
        for r in records:
            for image in r["images"]:
                writer.writerow(
                    [
                        r["method"],
                        r["seed"],
                        image["name"],
                        f"{image['psnr']:.4f}",
                        f"{image['ssim']:.5f}",
                        summary["protocol"],
                    ]
                )
    rows = summary["rows"]
    with atomic_path(folder / "summary.csv") as tmp, tmp.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=[*rows[0], "protocol"])
        writer.writeheader()
        writer.writerows({**row, "protocol": summary["protocol"]} for row in rows)
    write_json(folder / "summary.json", summary)
    with atomic_path(folder / "summary.md") as tmp:
        tmp.write_text(markdown_table(config, rows))
    _figure(folder, config, records, clean)


def _mean_or_none(values: list[float | None]) -> float | None:
    """The mean of the finite values; ``None`` when there are none (the noisy input, whose
    distance to itself is infinite)."""
    finite = [v for v in values if v is not None and math.isfinite(v)]
    return float(np.mean(finite)) if finite else None


def markdown_table(config: StudyConfig, rows: list[dict[str, Any]]) -> str:
    """The summary as a markdown table with a line saying what was run."""
    noise = {
        "awgn": f"AWGN sigma {config.sigma:g}" if config.sigma else "AWGN",
        "camera": f"synthetic camera noise ({config.level})",
    }.get(config.dataset, "real camera noise")
    ordinary = ""
    if any(m.endswith("-ordinary") for m in config.methods):
        made = "DBSNl made ordinary" if config.ordinary_net == "dbsnl" else config.ordinary_net
        ordinary = f"; ablation network {made}"
    head = (
        f"{config.dataset} ({noise}), {config.images or 'all'} images, seeds "
        f"{', '.join(map(str, config.seeds))}; training budget {config.cpu_seconds:g} CPU s per "
        f"model; backbone {config.net} ({config.preset}), AP-BSN DBSNl ({config.apbsn_preset})"
        f"{ordinary}.\n\nProtocol: {study_protocol(config)}.\n\n"
    )
    lines = [
        "| method | PSNR (dB) | SSIM | PSNR to the noisy input | training steps | s / image |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        if r["psnr_to_noisy"] is not None:
            to_noisy = f"{r['psnr_to_noisy']:.2f}"
        else:
            # No finite value: the input itself, or an output identical to it (8-bit).
            to_noisy = "–" if r["method"] == "noisy" else "∞ (identical)"
        lines.append(
            f"| {r['label']} | {r['psnr']:.2f} ± {r['psnr_std']:.2f} | "
            f"{r['ssim']:.4f} ± {r['ssim_std']:.4f} | {to_noisy} | "
            f"{r['train_steps']:.0f} | {r['seconds_per_image']:.2f} |"
        )
    return head + "\n".join(lines) + "\n"


def _figure(
    folder: Path,
    config: StudyConfig,
    records: list[dict[str, Any]],
    clean: list[tuple[str, torch.Tensor]],
) -> None:
    """Comparison sheet of the figure images of the first seed, from the saved outputs (an
    image is left out when some method's output of it was not saved)."""
    from amsnet.data.io import read_image

    seed = config.seeds[0]
    mine = {r["method"]: r for r in records if r["seed"] == seed}
    methods = [m for m in ALL_METHODS if m in mine]
    rows = []
    for index in figure_indices(len(clean)):
        paths = {m: record_path(folder, seed, m).with_name(f"{m}_img{index}.png") for m in methods}
        if all(path.exists() for path in paths.values()):
            rows.append((index, paths))
    if not rows:
        log.warning("no comparison sheet: the outputs of the figure images were not saved")
        return
    names = [clean[index][0] for index, _ in rows]
    columns = {LABELS[m]: [read_image(paths[m]).pixels for _, paths in rows] for m in methods}
    scores = {
        (LABELS[m], clean[index][0]): (
            mine[m]["images"][index]["psnr"],
            mine[m]["images"][index]["ssim"],
        )
        for m in methods
        for index, _ in rows
    }
    comparison_sheet(
        folder / "comparison.png",
        names,
        columns,
        [clean[index][1] for index, _ in rows],
        scores,
        size=192,
    )
