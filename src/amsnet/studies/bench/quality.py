"""The quality study: every method trained on the noisy test images themselves, equal budgets.

For one dataset (real noise: PolyU or CC crops; synthetic: camera noise or AWGN on clean
photos) it trains AP-BSN, AMSNet-B, AMSNet-P and a supervised ceiling on the very images it
then scores, each for the same CPU-time budget, runs BM3D with the oracle and the estimated
sigma, and reports PSNR / SSIM against the ground truth as mean and standard deviation over
seeds. The self-supervised methods never see a clean image; the supervised ceiling is trained
on the (noisy, clean) pairs of the same images, so it is an upper bound, not a competitor.

Rows (``METHODS``): ``noisy``; ``bm3d-oracle``, ``bm3d-estimated`` (see
:mod:`amsnet.studies.classical`); ``apbsn-r3`` (DBSNl, PD 5 / 2, R3); ``amsnet-b`` and
``amsnet-b-e`` (one model, without and with R3); ``amsnet-p`` and ``amsnet-p-e`` (AMSNet-B
trained for ``1 - finetune_share`` of the budget, then fine-tuned with L_t for the rest);
``supervised``.

Budgets are CPU seconds of this process (``time.process_time``), so other programs on the
machine do not shrink them; inference times are wall-clock seconds per image. Every (seed,
method) result and every trained model is written under ``output/runs`` as soon as it exists:
a killed study re-run with the same arguments picks up where it stopped.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from amsnet.checkpoint import load_pretrained, save_pretrained
from amsnet.data.benchmarks import load_pairs
from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN, Supervised
from amsnet.metrics import psnr, ssim
from amsnet.nets import create_net
from amsnet.runtime import prepare_for_inference, resolve_device
from amsnet.studies.bench.study_config import (
    ABLATION,
    ALL_METHODS,
    AMSNET_BY_NOISE,
    APBSN_BY_NOISE,
    LABELS,
    load_config,
    METHODS,
    MODELS,
    REFINED,
    StudyConfig,
)
from amsnet.studies.bench.study_report import (
    claim_folder,
    markdown_table,
    read_json,
    read_record,
    record_path,
    save_record,
    summarise,
    write_json,
    write_results,
)
from amsnet.studies.classical import bm3d_denoise, estimated_sigma, oracle_sigma, require_bm3d
from amsnet.training.fit import fit_images

log = logging.getLogger(__name__)


def run_study(
    config: StudyConfig, output: str | Path, *, report: Callable[[str], None] = print
) -> dict[str, Any]:
    """Run (or resume) a study and write ``results.csv``, ``summary.{json,csv,md}`` and
    ``comparison.png`` into ``output``.

    Returns:
        The summary: ``{"config": ..., "rows": [per-method means and standard deviations]}``.

    Raises:
        ConfigError: an unknown method, a dataset that yields no images, BM3D requested
            without the bm3d package, or results in ``output`` from other settings.
    """
    unknown = sorted(set(config.methods) - set(ALL_METHODS))
    if unknown:
        raise ConfigError(f"unknown methods {unknown}; choose from {list(ALL_METHODS)}")
    if any(m.startswith("bm3d") for m in config.methods):
        require_bm3d()
    folder = Path(output)
    claim_folder(folder, config)
    device = resolve_device(config.device)
    records: list[dict[str, Any]] = []
    figure_clean: list[tuple[str, torch.Tensor]] = []
    for seed in config.seeds:
        names, noisy, clean = _load(config, seed)
        figure_clean = figure_clean or list(zip(names, clean, strict=True))
        report(f"seed {seed}: {len(names)} images of {config.dataset}")
        for model, rows in MODELS.items():
            wanted = [r for r in rows if r in config.methods]
            if wanted:
                records += _trained_rows(
                    config,
                    folder,
                    device,
                    seed,
                    model,
                    wanted,
                    data=(names, noisy, clean),
                    report=report,
                )
        for method in ("noisy", "bm3d-oracle", "bm3d-estimated"):
            if method in config.methods:
                records.append(
                    _classical_row(config, folder, seed, method, names, noisy, clean, report)
                )
    summary = summarise(config, records)
    write_results(folder, config, records, summary, figure_clean)
    return summary


# -- data ---------------------------------------------------------------------------------


def _load(
    config: StudyConfig, seed: int
) -> tuple[list[str], list[torch.Tensor], list[torch.Tensor]]:
    """The study's images: real noise is fixed, synthetic noise is drawn from ``seed``."""
    pairs = list(
        load_pairs(
            config.dataset,
            config.root,
            clean_root=config.clean_root,
            sigma=config.sigma,
            level=config.level,
            seed=seed,
        )
    )
    if not pairs:
        raise ConfigError(f"no images found for dataset {config.dataset!r} in {config.root}")
    if config.images is not None and config.images < len(pairs):
        # Evenly spaced over the name order, so every camera / scene of the set is represented.
        chosen = np.linspace(0, len(pairs) - 1, config.images).round().astype(int)
        pairs = [pairs[i] for i in sorted(set(chosen.tolist()))]
    return [p.name for p in pairs], [p.noisy for p in pairs], [p.clean for p in pairs]


# -- methods ------------------------------------------------------------------------------


def _build(config: StudyConfig, model: str) -> torch.nn.Module:
    kind = config.noise_kind()
    if model.endswith("-ordinary"):
        if config.ordinary_net == "dbsnl":
            ordinary = create_net("dbsnl", preset=config.apbsn_preset, blind_spot=False)
        else:
            ordinary = create_net(config.ordinary_net, preset=config.preset)
        if model == "apbsn-ordinary":
            return APBSN(ordinary, **{**APBSN_BY_NOISE[kind], **config.apbsn})
        return AMSNet(ordinary, **{**AMSNET_BY_NOISE[kind], **config.amsnet})
    if model == "apbsn":
        settings = {**APBSN_BY_NOISE[kind], **config.apbsn}
        return APBSN(create_net("dbsnl", preset=config.apbsn_preset), **settings)
    backbone = create_net(config.net, preset=config.preset)
    if model == "supervised":
        return Supervised(backbone)
    return AMSNet(backbone, **{**AMSNET_BY_NOISE[kind], **config.amsnet})


def _crop_and_batch(config: StudyConfig, factor: int, per_sub_image: int) -> tuple[int, int]:
    """Training crop side and batch size for a PD stride.

    Strides up to 2 use ``config.crop`` and ``config.batch_size``. Larger strides use crops of
    ``per_sub_image`` pixels per PD sub-image (AMSNet's paper: 32, i.e. 160 pixels at stride
    5; AP-BSN's: 24, its 120-pixel patches) and fewer crops per step, so that a step costs
    about as many pixels as at small strides and the budget buys a similar number of steps.
    """
    if factor <= 2:
        return math.ceil(config.crop / factor) * factor, config.batch_size
    side = per_sub_image * factor
    batch = max(2, round(config.batch_size * config.crop**2 / side**2))
    return side, batch


def _train(
    config: StudyConfig,
    model: str,
    method: torch.nn.Module,
    noisy: list[torch.Tensor],
    clean: list[torch.Tensor],
    seed: int,
) -> dict[str, Any]:
    """Train ``method`` in place for the study's budget; returns steps and seconds."""
    budget = config.cpu_seconds
    clock = time.process_time
    wall = time.perf_counter()
    if model in ("apbsn", "apbsn-ordinary"):
        side, batch = _crop_and_batch(config, method.settings.pd_factor_train, 24)
        runs = [dict(crop=side, batch_size=batch, lr=config.lr / 2, seconds=budget)]
    elif model == "supervised":
        runs = [
            dict(
                crop=config.crop,
                batch_size=config.batch_size,
                lr=config.lr,
                seconds=budget,
                targets=clean,
            )
        ]
    else:
        factor = method.settings.pd_factor_train
        train = budget if model != "amsnet-p" else budget * (1 - config.finetune_share)
        side, batch = _crop_and_batch(config, factor, 32)
        runs = [dict(crop=side, batch_size=batch, lr=config.lr, seconds=train)]
        if model == "amsnet-p":
            # The paper fine-tunes on larger crops at a tenth of the training rate.
            tune = method.settings.pd_factor_finetune or factor
            side = math.ceil(config.finetune_crop / tune) * tune
            runs.append(
                dict(
                    crop=side,
                    batch_size=max(1, config.batch_size // 4),
                    lr=config.finetune_lr,
                    seconds=budget - train,
                    objective="finetune",
                )
            )
    steps, seconds = [], 0.0
    for number, run in enumerate(runs):
        result = fit_images(
            method,
            noisy,
            seed=seed * 1000 + number,
            clock=clock,
            **run,
        )
        steps.append(result.steps)
        seconds += result.seconds
    return {"steps": steps, "cpu_seconds": seconds, "wall_seconds": time.perf_counter() - wall}


def _trained_rows(
    config: StudyConfig,
    folder: Path,
    device: torch.device,
    seed: int,
    model: str,
    rows: list[str],
    *,
    data: tuple[list[str], list[torch.Tensor], list[torch.Tensor]],
    report: Callable[[str], None],
) -> list[dict[str, Any]]:
    names, noisy, clean = data
    done = [read_record(folder, seed, r) for r in rows]
    if all(d is not None for d in done):
        return [d for d in done if d is not None]
    # "model-" keeps the model's files apart from the records of rows with the same name.
    weights = folder / "runs" / f"seed{seed}" / f"model-{model}.safetensors"
    training = read_json(weights.with_suffix(".json"))
    if weights.exists() and training is not None:
        method = load_pretrained(weights, device=device)
        report(f"seed {seed}: {model} loaded from {weights}")
    else:
        torch.manual_seed(seed)
        method = _build(config, model).to(device)
        training = _train(config, model, method, noisy, clean, seed)
        save_pretrained(method, weights)
        write_json(weights.with_suffix(".json"), training)
        report(
            f"seed {seed}: {model} trained, {sum(training['steps'])} steps in "
            f"{training['cpu_seconds']:.0f} CPU s ({training['wall_seconds']:.0f} s wall)"
        )
    method = prepare_for_inference(method, device)
    records = []
    for row, existing in zip(rows, done, strict=True):
        if existing is not None:
            records.append(existing)
            continue
        generator = torch.Generator(device=device).manual_seed(seed)
        outputs, seconds = [], []
        for x in noisy:
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            tic = time.perf_counter()
            y = method.denoise(x[None].to(device), generator=generator, refine=row in REFINED)
            if device.type == "cuda":
                torch.cuda.synchronize(device)
            seconds.append(time.perf_counter() - tic)
            outputs.append(y[0].cpu())
        record = _score(row, seed, names, outputs, clean, seconds, noisy)
        record["training"] = training
        save_record(folder, record, outputs)
        report(f"seed {seed}: {LABELS[row]} {record['psnr']:.2f} dB, {record['ssim']:.4f}")
        records.append(record)
    return records


def _classical_row(
    config: StudyConfig,
    folder: Path,
    seed: int,
    method: str,
    names: list[str],
    noisy: list[torch.Tensor],
    clean: list[torch.Tensor],
    report: Callable[[str], None],
) -> dict[str, Any]:
    existing = read_record(folder, seed, method)
    if existing is not None:
        return existing
    first = config.seeds[0]
    if config.noise_kind() == "real" and seed != first:
        # Real noise is the same for every seed and these methods are deterministic: the first
        # seed's result stands for all (their standard deviation is then 0).
        earlier = read_record(folder, first, method)
        if earlier is not None:
            record = {**earlier, "seed": seed}
            write_json(record_path(folder, seed, method), record)
            return record
    outputs, seconds = [], []
    for x, y in zip(noisy, clean, strict=True):
        tic = time.perf_counter()
        if method == "noisy":
            outputs.append(x)
        else:
            sigma = oracle_sigma(x, y) if method == "bm3d-oracle" else estimated_sigma(x)
            outputs.append(bm3d_denoise(x, sigma))
        # The noisy input costs nothing: 0 s (charts draw it as a reference line).
        seconds.append(0.0 if method == "noisy" else time.perf_counter() - tic)
    record = _score(method, seed, names, outputs, clean, seconds, noisy)
    save_record(folder, record, outputs)
    report(f"seed {seed}: {LABELS[method]} {record['psnr']:.2f} dB, {record['ssim']:.4f}")
    return record


def _score(
    method: str,
    seed: int,
    names: list[str],
    outputs: list[torch.Tensor],
    clean: list[torch.Tensor],
    seconds: list[float],
    noisy: list[torch.Tensor],
) -> dict[str, Any]:
    per_image = []
    for name, x, y, z in zip(names, outputs, clean, noisy, strict=True):
        a, b = x[None].clamp(0, 1), y[None]
        per_image.append(
            {
                "name": name,
                "psnr": float(psnr(a, b)),
                "ssim": float(ssim(a, b)),
                # How close the output stays to its input: high for a network that learnt
                # the identity (supplement section 1.8).
                "psnr_to_noisy": None if method == "noisy" else float(psnr(a, z[None])),
            }
        )
    megapixels = sum(x.shape[-1] * x.shape[-2] for x in noisy) / 1e6
    return {
        "method": method,
        "seed": seed,
        "psnr": float(np.mean([p["psnr"] for p in per_image])),
        "ssim": float(np.mean([p["ssim"] for p in per_image])),
        "psnr_to_noisy": None
        if method == "noisy"
        else float(np.mean([p["psnr_to_noisy"] for p in per_image])),
        "seconds_per_image": float(np.mean(seconds)),
        "seconds_per_megapixel": float(sum(seconds) / megapixels),
        "images": per_image,
    }


__all__ = [
    "ABLATION",
    "ALL_METHODS",
    "LABELS",
    "METHODS",
    "MODELS",
    "StudyConfig",
    "load_config",
    "markdown_table",
    "run_study",
]
