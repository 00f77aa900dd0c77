"""Parameters, FLOPs and backbone passes of every method, beside the supplement's Table 1.

For each backbone (DnCNN, UNet, NAFNet, Restormer, DeamNet in AMSNet; DBSNl in AP-BSN) this
counts, on a 1x3x160x160 image (Table 1's size), one backbone forward pass and the whole
``denoise`` (variant B, and E with R3), and how many backbone passes each makes:

* AMSNet B: one backbone call on the k masked copies of the PD-2 sub-images
  (``k * 4`` images of 80x80): k passes, each over a quarter-size sub-image per PD phase.
* AMSNet E: then R3, ``refine_passes`` re-denoisings by the whole masked network at PD 1, all
  in one call of ``refine_passes * k`` full-resolution images: k + refine_passes * k passes.
* AP-BSN B: one DBSNl pass over the PD-2 mosaic (the sub-images with ``pd_pad`` pixels of
  padding each: 168x168 for 160x160). E: then ``refine_passes`` full-resolution passes on the
  image reflect-padded by ``pd_pad`` (164x164): 1 + refine_passes passes.

The passes are read from the backbone calls recorded while counting, so they follow the code.

Which convention Table 1 uses is worked out from the numbers (:func:`compare`): each row's
value is divided by our counts in five conventions and the closest is reported.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn

from amsnet.errors import ConfigError
from amsnet.methods import AMSNet, APBSN
from amsnet.nets import create_net, list_nets
from amsnet.ops.masks import PixelKey
from amsnet.studies.bench.counting import Count, count_call

TABLE1_SIZE = 160
"""Side of the square RGB image Table 1's FLOPs are given for."""

BLIND_SPOT_NET = "dbsnl"
"""The backbone benchmarked in AP-BSN; every other one is benchmarked in AMSNet."""


@dataclass(frozen=True)
class PaperCost:
    """One row of the supplement's Table 1.

    Attributes:
        parameters_m: parameters in millions, as printed (3 decimals).
        gflops: the "FLOPs (G)" column at 160x160.
        note: what is known about the row.
    """

    parameters_m: float
    gflops: float
    note: str = ""


TABLE1: dict[str, PaperCost] = {
    "dbsnl": PaperCost(3.656, 100.642, "LG-BPN's row repeats these numbers"),
    "restormer": PaperCost(26.112, 110.345),
    "deamnet": PaperCost(2.228, 114.21),
    "nafnet": PaperCost(29.056, 12.810),
    "unet": PaperCost(7.936, 69.873),
    "dncnn": PaperCost(
        5.898,
        0.115,
        "no configuration was released (ours: KAIR's colour DnCNN-17); 5.898M parameters in "
        "stride-1 convolutions would make about 151 GMACs per 160x160 pass, so the row "
        "contradicts itself",
    ),
}
"""Supplement Table 1 (parameters and FLOPs at 160x160), keyed by our backbone names."""

EXACT = 1.01
"""A ratio within this factor of 1 (either way) counts as a match."""
NEAR = 1.10
"""Within this factor the closest convention is reported as near, not matching."""


@dataclass
class CostRow:
    """The cost of one backbone in its method.

    Attributes:
        method: ``"AMSNet"`` or ``"AP-BSN"``.
        net: backbone name.
        preset: backbone preset.
        parameters: parameters of the method (its backbone's: the schemes add none).
        size: side of the square image counted (pixels).
        size_multiple: the backbone pads its input to a multiple of this inside.
        one_pass: one backbone forward pass on ``1x3xSxS``.
        denoise_b: the whole ``denoise`` (variant B).
        denoise_e: the whole ``denoise`` with R3 (variant E).
        passes_b: backbone passes per image in B (sub-image batches count as one pass).
        passes_e: backbone passes per image in E.
        paper: Table 1's row (``None`` when Table 1 does not apply, e.g. small presets).
        fits: Table 1's FLOPs divided by our counts (:func:`compare`; empty without ``paper``).
    """

    method: str
    net: str
    preset: str
    parameters: int
    size: int
    size_multiple: int
    one_pass: Count
    denoise_b: Count
    denoise_e: Count
    passes_b: int
    passes_e: int
    paper: PaperCost | None = None
    fits: list[Fit] = field(default_factory=list)


CONVENTIONS = {
    "macs_one_pass": "MACs, 1 pass",
    "macs_whole_b": "MACs, whole B",
    "layer_macs_one_pass": "layer MACs, 1 pass",
    "layer_macs_b_passes": "layer MACs × B's passes at full res",
    "layer_macs_whole_b": "layer MACs, whole B",
}
"""The counts Table 1 is compared with (see :func:`compare`): key -> column title."""


@dataclass(frozen=True)
class Fit:
    """Table 1's value divided by one of our counts.

    Attributes:
        convention: a key of :data:`CONVENTIONS`.
        description: what was counted, in words, for this row.
        ours_g: our count in G (1e9).
        ratio: Table 1 / ours.
    """

    convention: str
    description: str
    ours_g: float
    ratio: float


def method_for(net: str, preset: str | None, device: torch.device | str = "cpu") -> nn.Module:
    """The method a backbone is benchmarked in: AP-BSN for DBSNl, AMSNet for the others.

    Built with the paper's method settings (k = 2, PD 2 at inference, 8 R3 passes) directly
    on ``device`` (``"meta"`` builds it without memory, for counting).
    """
    with torch.device(device):
        backbone = create_net(net, preset=preset)
        return APBSN(backbone) if net == BLIND_SPOT_NET else AMSNet(backbone)


def count_denoise(
    method: nn.Module, size: int, *, refine: bool, refine_batch: int | None = None
) -> Count:
    """Count ``method.denoise`` on one ``1x3xSxS`` image of ``method``'s device.

    ``refine_batch``: R3 passes per backbone call (default: ``denoise``'s default on the
    method's device), as ``denoise`` takes it.

    On the meta device no random numbers can be drawn, so the masks are keyed to pixel
    positions (:class:`~amsnet.ops.masks.PixelKey`); the backbone sees the same shapes as with
    a generator.
    """
    device = next(method.parameters()).device
    noisy = torch.zeros(1, 3, size, size, device=device)
    # A CPU generator so that denoise does not try to create one on the meta device.
    generator = torch.Generator()

    def run() -> None:
        method.denoise(
            noisy,
            generator=generator,
            refine=refine,
            refine_batch=refine_batch,
            pixel_key=PixelKey(0),
        )

    return count_call(method.backbone, run)


def backbone_passes(count: Count, size: int) -> int:
    """Backbone passes per image of a counted ``denoise`` on one ``size``-pixel image.

    A call on ``n`` PD sub-images of stride ``f`` (side about ``size / f``) is ``n / f^2``
    passes; a call on ``n`` full-resolution images is ``n`` passes.
    """
    passes = 0.0
    for shape in count.calls:
        factor = max(1, round(size / shape[-1]))
        passes += shape[0] / factor**2
    return round(passes)


def measure_cost(net: str, preset: str = "paper", size: int = TABLE1_SIZE) -> CostRow:
    """Count parameters, one backbone pass and both ``denoise`` variants of ``net``.

    Raises:
        ConfigError: an unknown backbone or preset, or a size below 8.
    """
    if size < 8:
        raise ConfigError(f"the image size must be at least 8 pixels, got {size}")
    method = method_for(net, preset, "meta")
    backbone = method.backbone
    image = torch.zeros(1, 3, size, size, device="meta")
    with torch.no_grad():
        one_pass = count_call(backbone.eval(), lambda: backbone(image))
    denoise_b = count_denoise(method, size, refine=False)
    denoise_e = count_denoise(method, size, refine=True)
    row = CostRow(
        method="AP-BSN" if isinstance(method, APBSN) else "AMSNet",
        net=net,
        preset=preset,
        parameters=sum(p.numel() for p in method.parameters()),
        size=size,
        size_multiple=int(getattr(backbone, "size_multiple", 1)),
        one_pass=one_pass,
        denoise_b=denoise_b,
        denoise_e=denoise_e,
        passes_b=backbone_passes(denoise_b, size),
        passes_e=backbone_passes(denoise_e, size),
        paper=TABLE1.get(net) if preset == "paper" and size == TABLE1_SIZE else None,
    )
    row.fits = compare(row)
    return row


def measure_costs(
    nets: list[str] | None = None, preset: str = "paper", size: int = TABLE1_SIZE
) -> list[CostRow]:
    """:func:`measure_cost` of every backbone (default: all registered, DBSNl last)."""
    names = nets or [name for name in list_nets() if name != BLIND_SPOT_NET] + [BLIND_SPOT_NET]
    return [measure_cost(name, preset, size) for name in names]


def compare(row: CostRow) -> list[Fit]:
    """Table 1's FLOPs divided by our counts in five conventions (empty without a paper row).

    The conventions: MACs of one full-resolution pass; MACs of the whole B ``denoise``; the
    per-layer MACs (:mod:`amsnet.studies.bench.counting`) of one pass, of the B passes taken as
    full-resolution passes, and of the whole B ``denoise`` (PD sub-images, padding included).
    A FLOPs count of one pass is not listed: it equals the MACs of two passes, so it is the
    same candidate as "x 2 passes" for AMSNet and is told apart only by AP-BSN's single pass.
    """
    if row.paper is None:
        return []
    passes = f"{row.passes_b} full-res pass{'' if row.passes_b == 1 else 'es'}"
    candidates = {
        "macs_one_pass": row.one_pass.macs,
        "macs_whole_b": row.denoise_b.macs,
        "layer_macs_one_pass": row.one_pass.layer_macs,
        "layer_macs_b_passes": row.one_pass.layer_macs * row.passes_b,
        "layer_macs_whole_b": row.denoise_b.layer_macs,
    }
    descriptions = {"layer_macs_b_passes": f"layer MACs × {passes}"}
    return [
        Fit(
            key,
            descriptions.get(key, CONVENTIONS[key]),
            value / 1e9,
            row.paper.gflops / (value / 1e9) if value else math.inf,
        )
        for key, value in candidates.items()
    ]


def conclusion(row: CostRow) -> str:
    """One sentence: which convention row's Table 1 value matches, and how closely."""
    if not row.fits:
        return "no Table 1 row for this preset and size"
    best = min(row.fits, key=lambda fit: abs(math.log(fit.ratio)))
    others = [
        fit.description
        for fit in row.fits
        if fit is not best and abs(math.log(fit.ratio)) <= math.log(EXACT)
    ]
    if abs(math.log(best.ratio)) <= math.log(EXACT):
        also = f" (= {', '.join(others)})" if others else ""
        return f"matches {best.description}{also}: ×{best.ratio:.3f}"
    if abs(math.log(best.ratio)) <= math.log(NEAR):
        return f"closest: {best.description}, ×{best.ratio:.3f}; no exact fit"
    return f"fits no convention (closest: {best.description}, ×{best.ratio:.3g})"


def summary(rows: list[CostRow]) -> str:
    """The convention that matches Table 1 on most rows, and why MACs rather than FLOPs."""
    compared = [row for row in rows if row.fits]
    if not compared:
        return "Table 1 applies to the paper presets at 160x160 only; nothing to compare."
    matches: dict[str, int] = {}
    for row in compared:
        for fit in row.fits:
            if abs(math.log(fit.ratio)) <= math.log(EXACT):
                matches[fit.convention] = matches.get(fit.convention, 0) + 1
    lines = []
    if matches:
        best, hits = max(matches.items(), key=lambda item: item[1])
        lines.append(
            f"Best convention: {CONVENTIONS[best]} (within {EXACT - 1:.0%} on {hits} of "
            f"{len(compared)} rows)."
        )
    for row in compared:
        if row.passes_b != 1:
            continue
        paper = row.paper
        assert paper is not None
        flops = paper.gflops / (row.one_pass.flops / 1e9)
        macs = paper.gflops / (row.one_pass.macs / 1e9)
        unit = "MACs, not FLOPs" if abs(math.log(macs)) < abs(math.log(flops)) else "FLOPs"
        lines.append(
            f"{unit}: a FLOPs count of one pass equals a MAC count of two passes, so the rows "
            f"of a method with k = 2 passes cannot tell them apart; {row.method} makes one "
            f"pass, and its row is ×{macs:.3f} our MACs but ×{flops:.3f} our FLOPs of it."
        )
    return "\n".join(lines)


def _giga(value: int) -> str:
    return f"{value / 1e9:.3f}"


def _calls(row: CostRow, count: Count, skip: int = 0) -> str:
    """The backbone calls of a ``denoise`` as ``N×H×W`` (with the backbone's own padding)."""
    parts = []
    for shape in count.calls[skip:]:
        height, width = shape[-2:]
        text = f"{shape[0]}×{height}×{width}"
        multiple = row.size_multiple
        padded = (math.ceil(height / multiple) * multiple, math.ceil(width / multiple) * multiple)
        if padded != (height, width):
            text += f" (pads to {padded[0]}×{padded[1]})"
        parts.append(text)
    return " + ".join(parts)


def cost_markdown(rows: list[CostRow]) -> str:
    """Markdown: the cost table, then the Table 1 comparison with a conclusion per row."""
    if not rows:
        return ""
    size = rows[0].size
    lines = [
        f"Costs on one 1x3x{size}x{size} image (FLOPs by torch.utils.flop_counter, a "
        f'multiply-add = 2 FLOPs; MACs = FLOPs / 2; "layer MACs": the per-layer profilers\' '
        f"rule, see amsnet.studies.bench.counting).",
        "",
        "| method | backbone | preset | params | GFLOPs 1 pass | GMACs 1 pass | layer GMACs "
        "1 pass | passes B | backbone calls B | GFLOPs B | passes E | R3 calls | GFLOPs E |",
        "|---|---|---|---:|---:|---:|---:|---:|---|---:|---:|---|---:|",
    ]
    for row in rows:
        lines.append(
            f"| {row.method} | {row.net} | {row.preset} | {row.parameters:,} | "
            f"{_giga(row.one_pass.flops)} | {_giga(row.one_pass.macs)} | "
            f"{_giga(row.one_pass.layer_macs)} | {row.passes_b} | {_calls(row, row.denoise_b)} | "
            f"{_giga(row.denoise_b.flops)} | {row.passes_e} | "
            f"{_calls(row, row.denoise_e, skip=len(row.denoise_b.calls))} | "
            f"{_giga(row.denoise_e.flops)} |"
        )
    padded = [row.net for row in rows if size % row.size_multiple]
    lines.append("")
    lines.append(
        f"The single pass is on {size}x{size} directly"
        + (f" (padded inside by: {', '.join(padded)})." if padded else "; no backbone pads it.")
    )
    compared = [row for row in rows if row.fits]
    if not compared:
        return "\n".join([*lines, "", summary(rows)]) + "\n"
    names = [CONVENTIONS[fit.convention] for fit in compared[0].fits]
    lines += [
        "",
        "Supplement Table 1 (160x160) divided by our counts:",
        "",
        "| method | backbone | params | Table 1 params | Table 1 G | "
        + " | ".join(f"÷ {name}" for name in names)
        + " | conclusion |",
        "|---|---|---:|---:|---:|" + "---:|" * len(names) + "---|",
    ]
    for row in compared:
        paper = row.paper
        assert paper is not None
        same = round(row.parameters / 1e6, 3) == paper.parameters_m
        lines.append(
            f"| {row.method} | {row.net} | {row.parameters / 1e6:.3f}M | "
            f"{paper.parameters_m:.3f}M{'' if same else ' ≠'} | {paper.gflops:g} | "
            + " | ".join(f"{fit.ratio:.3f}" for fit in row.fits)
            + f" | {conclusion(row)}"
            + (f"; {paper.note}" if paper.note else "")
            + " |"
        )
    lines += ["", summary(rows)]
    return "\n".join(lines) + "\n"


def cost_records(rows: list[CostRow]) -> list[dict[str, Any]]:
    """The rows as plain dicts for JSON (counts in units, not G)."""
    records = []
    for row in rows:
        record = asdict(row)
        for key in ("one_pass", "denoise_b", "denoise_e"):
            record[key]["macs"] = record[key]["flops"] // 2
        record["conclusion"] = conclusion(row)
        records.append(record)
    return records
