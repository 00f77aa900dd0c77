"""Comparison sheets: one row per image, one labelled column per method (and the clean image
when there is one)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amsnet.studies.comparison import comparison_sheet

PIL = pytest.importorskip("PIL.Image")


def images(count: int, value: float) -> list[torch.Tensor]:
    return [torch.full((3, 40, 50), value) for _ in range(count)]


def test_with_a_clean_column(tmp_path):
    path = comparison_sheet(
        tmp_path / "sheet.png",
        ["a", "b"],
        {"noisy": images(2, 0.25), "ours": images(2, 0.5)},
        images(2, 1.0),
        {("ours", "a"): (31.5, 0.9)},
        size=32,
    )
    sheet = np.asarray(PIL.open(path))
    assert sheet.shape == (2 * (32 + 30), 3 * 32, 3)
    # The last column of the first row's crop is the clean image (white), the first is noisy.
    assert sheet[40, 80].tolist() == [255, 255, 255]
    assert sheet[40, 10].tolist() == [64, 64, 64]


def test_without_ground_truth_as_jpeg_with_text_scores(tmp_path):
    path = comparison_sheet(
        tmp_path / "sheet.jpg",
        ["a"],
        {"noisy": images(1, 0.25), "ours": images(1, 0.75)},
        None,
        {("ours", "a"): "noise left 12%"},
        size=32,
    )
    with PIL.open(path) as sheet:
        assert sheet.format == "JPEG" and sheet.size == (2 * 32, 32 + 30)
        pixels = np.asarray(sheet)
    assert abs(int(pixels[45, 48, 0]) - 191) <= 3  # the second column holds "ours"
