"""Validation during training: pairs spread over the whole set, the paper's metrics, samples.

The pairs of ``data.val`` are read once at the start of a run and kept in memory. With
``limit``, that many images are taken evenly spread over the *whole* set
(:func:`amsnet.data.sidd_blocks.spread_indices`): the official AMSNet fit validates on the 32
blocks of the first SIDD image only, which makes checkpoint selection noisy and biased. (For
folders and synthetic sets every image is read once to pick the subset; SIDD blocks are
selected before conversion.)

Each validation denoises every pair once with a fixed mask seed, so successive validations
differ by the weights only, and scores it with :func:`amsnet.evaluate.evaluate` (8-bit
quantised PSNR and SSIM in both conventions, mean over images). It measures the base output
(variants B and P), without R3, which would cost 8 more network passes per image.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import torch
from torch import nn

from amsnet.config import ValDataConfig
from amsnet.data.benchmarks import EvalPair, load_benchmark
from amsnet.errors import DataError
from amsnet.evaluate import evaluate

SAMPLE_CROP = 128
"""Side of the centre crops in the sample images written at validation."""


def load_validation_pairs(config: ValDataConfig) -> list[EvalPair]:
    """The validation pairs of a ``data.val`` section, ``limit`` of them spread over all.

    Raises:
        DataError: a missing or malformed dataset; the message names the config key.
        ConfigError: scikit-image is missing for ``root: skimage``.
    """
    try:
        return load_benchmark(config)
    except DataError as error:
        raise DataError(f"data.val.root ({config.root}): {error}") from None


class _Recorder(nn.Module):
    """Passes ``denoise`` calls to the method and keeps the first ``keep`` outputs.

    :func:`amsnet.evaluate.evaluate` denoises every pair; recording the outputs it computes
    gives the sample images without denoising anything twice.
    """

    def __init__(self, method: nn.Module, keep: int) -> None:
        super().__init__()
        self.method = method
        self.backbone = method.backbone
        self.keep = keep
        self.outputs: list[torch.Tensor] = []

    def method_config(self) -> dict[str, Any]:
        return self.method.method_config()

    def denoise(self, noisy: torch.Tensor, **options: Any) -> torch.Tensor:
        denoised = self.method.denoise(noisy, **options)
        if len(self.outputs) < self.keep:
            self.outputs.append(denoised[0].detach().float().cpu())
        return denoised


def run_validation(
    method: nn.Module,
    pairs: Sequence[EvalPair],
    *,
    device: torch.device,
    seed: int,
    dataset: str,
    samples: int = 0,
) -> tuple[dict[str, float], torch.Tensor | None]:
    """Denoise and score every pair; also return a sample image.

    Args:
        method: the model (or its weight average) on ``device``.
        pairs: the validation pairs.
        device: where ``method`` lives.
        seed: seed of the masks (the same at every validation).
        dataset: the data set's name, for the report.
        samples: how many pairs appear in the sample image.

    Returns:
        ``({"psnr", "ssim_matlab", "ssim_skimage", "seconds"}, sample)`` where ``sample`` is a
        float32 ``(3, n * S, 3 * S)`` image in ``[0, 1]``: one row ``noisy | denoised | clean``
        per pair, centre crops of side ``S`` = min(128, the smallest image side); ``None``
        when ``samples`` is 0.
    """
    recorder = _Recorder(method, samples)
    report = evaluate(recorder, pairs, dataset=dataset, seeds=[seed], device=device)
    summary = report.summary()
    metrics = {
        "psnr": float(summary["psnr"]),
        "ssim_matlab": float(summary["ssim_matlab"]),
        "ssim_skimage": float(summary["ssim_skimage"]),
        "seconds": float(sum(row.seconds for row in report.rows)),
    }
    sample = None
    if recorder.outputs:
        sample = sample_image(list(pairs[: len(recorder.outputs)]), recorder.outputs)
    return metrics, sample


def sample_image(pairs: Sequence[EvalPair], denoised: Sequence[torch.Tensor]) -> torch.Tensor:
    """Rows of ``noisy | denoised | clean`` centre crops, one row per pair.

    Returns:
        float32 ``(3, rows * S, 3 * S)`` in ``[0, 1]``.
    """
    size = min(
        [SAMPLE_CROP] + [min(pair.noisy.shape[-2:]) for pair in pairs]  # type: ignore[list-item]
    )
    rows = []
    for pair, output in zip(pairs, denoised, strict=True):
        height, width = pair.noisy.shape[-2:]
        top, left = (height - size) // 2, (width - size) // 2
        crops = [
            image[:, top : top + size, left : left + size].float().cpu().clamp(0, 1)
            for image in (pair.noisy, output, pair.clean)
        ]
        rows.append(torch.cat(crops, dim=-1))
    return torch.cat(rows, dim=-2)


def is_better(psnr: float, best: float | None) -> bool:
    """Whether a validation PSNR beats the best so far (NaN never does)."""
    return not math.isnan(psnr) and (best is None or psnr > best)
