"""``amsnet.studies.bench.cost`` and its counters: analytic counts, passes read from the code,
Table 1."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from amsnet.errors import ConfigError
from amsnet.nets import list_presets
from amsnet.studies.bench.cost import (
    compare,
    conclusion,
    cost_markdown,
    measure_cost,
    method_for,
    PaperCost,
    TABLE1,
)
from amsnet.studies.bench.counting import count_call


def dncnn_macs(size: int, width: int, depth: int) -> int:
    """MACs of a colour DnCNN on one size x size image: every 3x3 conv at every pixel."""
    per_pixel = 3 * width * 9 + (depth - 2) * width * width * 9 + width * 3 * 9
    return per_pixel * size * size


def test_one_dncnn_pass_counts_the_analytic_flops_of_its_convolutions():
    preset = list_presets("dncnn")["small"]
    width, depth = preset["width"], preset.get("depth", 17)
    row = measure_cost("dncnn", "small", size=32)
    assert row.one_pass.flops == 2 * dncnn_macs(32, width, depth)
    assert row.one_pass.macs == row.one_pass.layer_macs == dncnn_macs(32, width, depth)


def test_amsnet_passes_follow_the_code_k_sub_image_passes_then_k_per_r3_pass():
    row = measure_cost("dncnn", "small", size=32)
    method = method_for("dncnn", "small", "meta")
    k, refine = method.settings.num_masks, method.settings.refine_passes
    # B: one call on the k masked copies of the 4 PD-2 sub-images of 16x16.
    assert row.denoise_b.calls == [(k * 4, 3, 16, 16)]
    # E adds one call of refine_passes * k full-resolution images (R3 at PD 1).
    assert row.denoise_e.calls == [(k * 4, 3, 16, 16), (refine * k, 3, 32, 32)]
    assert (row.passes_b, row.passes_e) == (k, k + refine * k)
    # DnCNN's cost is linear in pixels: the whole denoise is exactly that many passes.
    assert row.denoise_b.flops == k * row.one_pass.flops
    assert row.denoise_e.flops == (k + refine * k) * row.one_pass.flops


def test_apbsn_makes_one_mosaic_pass_then_one_pass_per_r3_pass():
    row = measure_cost("dbsnl", "small", size=32)
    method = method_for("dbsnl", "small", "meta")
    pad, refine = method.settings.pd_pad, method.settings.refine_passes
    mosaic = 2 * (32 // 2 + 2 * pad)
    assert row.method == "AP-BSN"
    assert row.denoise_b.calls == [(1, 3, mosaic, mosaic)]
    assert row.denoise_e.calls[1] == (refine, 3, 32 + 2 * pad, 32 + 2 * pad)
    assert (row.passes_b, row.passes_e) == (1, 1 + refine)


def test_layer_macs_follow_the_profilers_rule_for_transposed_convolutions():
    up = nn.ConvTranspose2d(4, 5, kernel_size=2, stride=2)
    count = count_call(up, lambda: up(torch.zeros(1, 4, 3, 3)))
    true_macs = 4 * 5 * 2 * 2 * 3 * 3  # every input pixel meets every weight once
    assert count.macs == true_macs
    # Output elements x input channels x kernel: stride^2 = 4 times too many.
    assert count.layer_macs == 4 * true_macs


@pytest.mark.parametrize("name", [name for name in TABLE1 if name != "dncnn"])
def test_paper_presets_have_table1_parameter_counts(name):
    method = method_for(name, "paper", "meta")
    assert round(sum(p.numel() for p in method.parameters()) / 1e6, 3) == (
        TABLE1[name].parameters_m
    )


@pytest.mark.parametrize("name", ["unet", "restormer"])
def test_table1_flops_are_layer_macs_of_two_full_resolution_passes(name):
    # The rows that tell the conventions apart: UNet's transposed convolutions and
    # Restormer's attention products are counted differently by the two counters.
    row = measure_cost(name, "paper")
    assert conclusion(row).startswith("matches layer MACs × 2 full-res passes")
    by_key = {fit.convention: fit.ratio for fit in row.fits}
    assert by_key["layer_macs_b_passes"] == pytest.approx(1.0, abs=0.01)
    assert abs(by_key["macs_one_pass"] - 1.0) > 0.5


def test_a_synthetic_table_value_is_recognised_and_small_presets_are_not_compared():
    row = measure_cost("dncnn", "small", size=160)
    assert row.fits == [] and "no Table 1 row" in conclusion(row)
    row.paper = PaperCost(0.22, row.one_pass.flops / 1e9)
    row.fits = compare(row)
    # One pass in FLOPs is two passes in MACs: both conventions are named.
    text = conclusion(row)
    assert text.startswith("matches") and "×1.000" in text


def test_markdown_has_both_tables_and_the_summary_for_paper_presets():
    rows = [measure_cost("unet", "paper"), measure_cost("dbsnl", "paper")]
    text = cost_markdown(rows)
    assert "| AMSNet | unet | paper | 7,935,555 |" in text
    assert "8×80×80 (pads to 96×96)" in text
    assert "Supplement Table 1" in text and "MACs, not FLOPs" in text


def test_bad_sizes_and_names_raise_config_errors():
    with pytest.raises(ConfigError, match="at least 8"):
        measure_cost("dncnn", "small", size=4)
    with pytest.raises(ConfigError, match="unknown backbone"):
        measure_cost("dcnn", "small")
    with pytest.raises(ConfigError, match="no preset"):
        measure_cost("dncnn", "tiny")
