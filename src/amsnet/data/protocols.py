"""How a reported number was obtained: one protocol label per dataset and benchmark.

Figures obtained under different protocols must not share a table. The clearest case is the
SIDD benchmark: the original SIDD server has closed, and the Kaggle board that replaced it
(competitions ``sidd-benchmark-srgb-psnr`` and ``sidd-benchmark-srgb-ssim``) reports SSIM near
0.86-0.88 for outputs whose SSIM the old server put at 0.93-0.94, so a paper's old-server SSIM
and a Kaggle SSIM measure different things (``docs/sidd_benchmark.md`` gives the sources).
Every evaluation report (:class:`amsnet.evaluate.EvaluationReport`), every quality-study
report (:mod:`amsnet.studies.bench.study_report`) and every submission message of ``amsnet submit``
therefore carries the label :func:`protocol_for` gives, and this table is the only place
those labels are written.

Example:
    >>> protocol_for("sidd-val")
    'SIDD validation, local (1280 blocks, PSNR/SSIM computed by amsnet)'
    >>> protocol_for("sidd-val", detail="128 of 1280 blocks")
    'SIDD validation, local (128 of 1280 blocks, PSNR/SSIM computed by amsnet)'
"""

from __future__ import annotations

from typing import NamedTuple


class Protocol(NamedTuple):
    """The parts of a protocol label.

    Attributes:
        data: what was denoised, e.g. ``"SIDD benchmark"``.
        scorer: who computed the figures and where, e.g. ``"Kaggle board"``.
        detail: what a reader needs to compare figures (format, size, caveat), or ``""``.
    """

    data: str
    scorer: str
    detail: str


LOCAL = "PSNR/SSIM computed by amsnet"
"""How every figure of ``amsnet eval`` and of the quality study is computed (see
:mod:`amsnet.metrics`: 8-bit quantised images, SSIM in two conventions)."""

PROTOCOLS: dict[str, Protocol] = {
    "sidd-val": Protocol("SIDD validation", "local", f"1280 blocks, {LOCAL}"),
    "sidd-bench-mat": Protocol(
        "SIDD benchmark",
        "old server",
        ".mat; PSNR/SSIM computed by the SIDD server, now closed",
    ),
    "sidd-bench-kaggle": Protocol(
        "SIDD benchmark",
        "Kaggle board",
        "CSV; PSNR/SSIM computed by Kaggle; SSIM not comparable with the old server's",
    ),
    "dnd": Protocol("DND", "online", "bundled .mat files; PSNR/SSIM computed by the DND server"),
    "polyu": Protocol("PolyU", "local with ground truth", LOCAL),
    "cc": Protocol("CC15 (Nam et al.)", "local with ground truth", LOCAL),
    "folders": Protocol("paired folders", "local with ground truth", LOCAL),
    "awgn": Protocol("synthetic AWGN on clean images", "local with ground truth", LOCAL),
    "camera": Protocol("synthetic camera noise on clean images", "local with ground truth", LOCAL),
}
"""Protocol of each dataset of ``amsnet eval`` / the quality study, and of each submission
format of ``amsnet submit``."""


def protocol_for(name: str, *, detail: str | None = None) -> str:
    """The protocol label of a dataset or submission format.

    Args:
        name: a key of :data:`PROTOCOLS` (``"sidd-val"``, ``"sidd-bench-kaggle"``, ``"polyu"``
            ...). Any other name is a dataset scored locally against its ground truth (the
            only way :func:`amsnet.evaluate.evaluate` computes figures).
        detail: replaces the size part of the label where the evaluation used another one,
            e.g. ``"128 of 1280 blocks"`` for a subset of the SIDD validation blocks, or adds
            a setting (``"sigma 25"``) in front of the scorer.

    Returns:
        ``"<data>, <scorer> (<detail>)"``.
    """
    protocol = PROTOCOLS.get(name) or Protocol(name, "local with ground truth", LOCAL)
    if detail is None:
        parts = protocol.detail
    elif name == "sidd-val":
        parts = f"{detail}, {LOCAL}"
    else:
        parts = f"{detail}; {protocol.detail}"
    return f"{protocol.data}, {protocol.scorer} ({parts})"
