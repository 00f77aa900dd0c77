"""Noisy/clean pairs matched by name rules, on small files and on the real benchmark pairs."""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch

from amsnet.data.io import to_uint8
from amsnet.data.pairs import PairedFolder
from amsnet.errors import ConfigError, DataError
from tests.conftest import shared_data
from tests.unit.imagefiles import coordinates_image, noise, save

# ----- PairedFolder


@pytest.fixture
def polyu_like(tmp_path):
    root = tmp_path / "polyu"
    for name, value in (("A_1_real.JPG", 10), ("A_1_mean.JPG", 20), ("B_Real.JPG", 30)):
        save(root / "Cropped" / name, np.full((16, 16, 3), value, np.uint8))
    save(root / "Cropped" / "B_mean.JPG", np.full((16, 16, 3), 40, np.uint8))
    (root / "README.md").write_text("x")
    return root


def test_polyu_rule_pairs_real_and_mean_in_any_case(polyu_like):
    dataset = PairedFolder(polyu_like, rule="polyu")
    assert dataset.names == ["Cropped/A_1_real", "Cropped/B_Real"]
    assert [clean.name for _, clean in dataset.pairs] == ["A_1_mean.JPG", "B_mean.JPG"]


def test_paired_items_are_rgb_float_pairs_with_a_name(polyu_like):
    item = PairedFolder(polyu_like, rule="polyu")[1]
    assert item["name"] == "Cropped/B_Real"
    assert item["noisy"].shape == item["clean"].shape == (3, 16, 16)
    assert abs(float(item["noisy"].mean()) * 255 - 30) < 2
    assert abs(float(item["clean"].mean()) * 255 - 40) < 2


def test_noisy_image_without_partner_raises_listing_it(polyu_like):
    save(polyu_like / "Cropped" / "C_real.JPG", noise(16, 16))
    with pytest.raises(DataError, match=r"1 noisy image.*Cropped/C_real\.JPG.*strict=False"):
        PairedFolder(polyu_like, rule="polyu")


def test_non_strict_skips_unmatched_with_a_warning(polyu_like, caplog):
    save(polyu_like / "Cropped" / "C_real.JPG", noise(16, 16))
    with caplog.at_level(logging.WARNING, logger="amsnet.data.pairs"):
        dataset = PairedFolder(polyu_like, rule="polyu", strict=False)
    assert len(dataset) == 2 and "C_real.JPG" in caplog.text


def test_cc_rule_pairs_png_files(tmp_path):
    save(tmp_path / "x_iso1_real.png", noise(8, 8))
    save(tmp_path / "x_iso1_mean.png", noise(8, 8))
    save(tmp_path / "y_real.jpg", noise(8, 8))  # not a cc file: ignored
    dataset = PairedFolder(tmp_path, rule="cc")
    assert dataset.names == ["x_iso1_real"]


def test_regex_rule_pairs_by_the_key_group(tmp_path):
    save(tmp_path / "0001_NOISY.png", noise(8, 8))
    save(tmp_path / "0001_GT.png", noise(8, 8))
    dataset = PairedFolder(
        tmp_path,
        rule="regex",
        noisy_pattern=r"(?P<key>\d+)_NOISY\.png",
        clean_pattern=r"(?P<key>\d+)_GT\.png",
    )
    assert [(n.name, c.name) for n, c in dataset.pairs] == [("0001_NOISY.png", "0001_GT.png")]


def test_regex_rule_needs_a_key_group(tmp_path):
    save(tmp_path / "a.png", noise(8, 8))
    with pytest.raises(ConfigError, match="group named key"):
        PairedFolder(tmp_path, rule="regex", noisy_pattern=r"(.+)\.png", clean_pattern=r"(.+)")


def test_folders_rule_pairs_identical_relative_names(tmp_path):
    save(tmp_path / "noisy" / "s" / "a.png", noise(8, 8))
    save(tmp_path / "clean" / "s" / "a.png", noise(8, 8))
    dataset = PairedFolder(tmp_path / "noisy", rule="folders", clean_root=tmp_path / "clean")
    assert dataset.names == ["s/a"] and dataset.pairs[0][1] == tmp_path / "clean" / "s" / "a.png"


def test_csv_rule_reads_noisy_and_gt_columns(tmp_path):
    save(tmp_path / "n.png", noise(8, 8))
    save(tmp_path / "g.png", noise(8, 8))
    (tmp_path / "pairs.csv").write_text("pair_id,noisy,gt\np,n.png,g.png\n")
    dataset = PairedFolder(tmp_path, rule="csv")
    assert dataset.pairs == [(tmp_path / "n.png", tmp_path / "g.png")]


def test_pairs_of_different_sizes_raise(tmp_path):
    save(tmp_path / "a_real.png", noise(8, 8))
    save(tmp_path / "a_mean.png", noise(8, 9))
    with pytest.raises(DataError, match="8x8 but its clean partner .* is 8x9"):
        PairedFolder(tmp_path, rule="cc")[0]


def test_random_crop_has_the_same_geometry_in_both_images(tmp_path):
    grid = coordinates_image(40, 50)
    save(tmp_path / "a_real.png", grid)
    save(tmp_path / "a_mean.png", grid)
    dataset = PairedFolder(tmp_path, rule="cc", crop_size=12, seed=4)
    item = dataset[0]
    assert item["noisy"].shape == (3, 12, 12) and torch.equal(item["noisy"], item["clean"])
    dataset.set_epoch(1)
    assert not torch.equal(dataset[0]["noisy"], item["noisy"])


# ----- the real benchmark pairs in ../shared/data


def mean_psnr_uint8(dataset):
    """Per-pair PSNR over all uint8 values, 20 log10(255 / sqrt(MSE)), averaged over pairs."""
    values = []
    for item in dataset:
        noisy = to_uint8(item["noisy"]).astype(np.float64)
        clean = to_uint8(item["clean"]).astype(np.float64)
        values.append(20 * np.log10(255 / np.sqrt(np.mean((noisy - clean) ** 2))))
    return float(np.mean(values))


def test_polyu_folder_holds_the_pairs_its_readme_counts():
    root = shared_data("polyu")
    # README: 60 crop pairs + 24 full-size pairs (X_Real.JPG + X_mean.JPG)
    assert len(PairedFolder(root / "CroppedImages", rule="polyu")) == 60
    assert len(PairedFolder(root / "OriginalImages", rule="polyu")) == 24
    assert len(PairedFolder(root, rule="polyu")) == 84


def test_polyu_mean_psnr_matches_the_readme():
    dataset = PairedFolder(shared_data("polyu") / "CroppedImages", rule="polyu")
    assert round(mean_psnr_uint8(dataset), 4) == 35.8974


def test_cc15_pairs_and_mean_psnr_match_the_readme():
    dataset = PairedFolder(shared_data("cc15"), rule="cc")
    assert len(dataset) == 15
    assert round(mean_psnr_uint8(dataset), 4) == 33.4142
