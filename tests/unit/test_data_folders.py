"""Folder datasets: image listing, random training crops, decoded-image cache, noisy/clean pairs."""

from __future__ import annotations

import logging
import os
import pickle

import numpy as np
import pytest
import torch
from PIL import Image as PILImage
from torch.utils.data import DataLoader

import amsnet.data.folders as folders
from amsnet.data.folders import (
    DecodedImageCache,
    item_generator,
    list_images,
    NoisyFolder,
    PairedFolder,
)
from amsnet.data.io import to_uint8
from amsnet.errors import ConfigError, DataError
from tests.conftest import shared_data

RNG = np.random.default_rng(7)


def save(path, array):
    path.parent.mkdir(parents=True, exist_ok=True)
    PILImage.fromarray(array).save(path)
    return path


def noise(height, width, channels=3):
    shape = (height, width) if channels == 1 else (height, width, channels)
    return RNG.integers(0, 256, shape, dtype=np.uint8)


def coordinates_image(height, width):
    """RGB image whose pixel (y, x) is (y, x, 0): a crop tells where it came from."""
    y, x = np.mgrid[:height, :width]
    return np.stack([y, x, np.zeros_like(y)], axis=-1).astype(np.uint8)


def count_decodes(monkeypatch):
    calls = []
    original = folders.read_array

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(folders, "read_array", counting)
    return calls


@pytest.fixture
def noisy_dir(tmp_path):
    save(tmp_path / "noisy" / "a.png", noise(40, 48))
    save(tmp_path / "noisy" / "sub" / "b.JPG", noise(36, 30))
    save(tmp_path / "noisy" / "c.png", noise(32, 32, channels=1))
    (tmp_path / "noisy" / "README.md").write_text("about the data")
    return tmp_path / "noisy"


# ----- list_images


def test_list_images_is_sorted_recursive_and_skips_other_files(tmp_path):
    for name in ("b.png", "a.jpg", "sub/c.TIF", ".hidden/d.png", "._e.png"):
        save(tmp_path / name, noise(4, 4))
    (tmp_path / "MANIFEST.csv").write_text("file\n")
    (tmp_path / "pairs.csv").write_text("noisy,gt\n")
    names = [path.relative_to(tmp_path).as_posix() for path in list_images(tmp_path)]
    assert names == ["a.jpg", "b.png", "sub/c.TIF"]
    assert len(list_images(tmp_path, recursive=False)) == 2


def test_list_images_of_a_missing_folder_raises(tmp_path):
    with pytest.raises(DataError, match="does not exist"):
        list_images(tmp_path / "nowhere")


def test_list_images_of_a_folder_without_images_raises(tmp_path):
    (tmp_path / "README.md").write_text("x")
    with pytest.raises(DataError, match="no images"):
        list_images(tmp_path)


# ----- NoisyFolder


def test_noisy_folder_items_are_rgb_crops_in_unit_range(noisy_dir):
    dataset = NoisyFolder(noisy_dir, crop_size=20, pd_factor=5, crops_per_epoch=12)
    assert len(dataset) == 12
    for index in range(12):
        crop = dataset[index]
        assert crop.shape == (3, 20, 20) and crop.dtype == torch.float32
        assert crop.min() >= 0 and crop.max() <= 1


def test_crop_size_must_be_a_multiple_of_the_pd_factor(noisy_dir):
    with pytest.raises(ConfigError, match="multiple of the pixel-shuffle factor 5; use 160 or 165"):
        NoisyFolder(noisy_dir, crop_size=162, pd_factor=5)


@pytest.mark.parametrize(
    "options", [{"crops_per_epoch": 0}, {"sampling": "random"}, {"seed": -1}, {"crop_size": 0}]
)
def test_noisy_folder_rejects_bad_settings(noisy_dir, options):
    with pytest.raises(ConfigError):
        NoisyFolder(noisy_dir, **options)


def test_same_seed_epoch_and_index_give_the_same_crop(noisy_dir):
    first = NoisyFolder(noisy_dir, crop_size=16, seed=3)
    second = NoisyFolder(noisy_dir, crop_size=16, seed=3)
    first.set_epoch(2)
    second.set_epoch(2)
    assert torch.equal(first[5], second[5])
    second.set_epoch(3)
    assert not torch.equal(first[5], second[5])


def test_indices_past_the_epoch_continue_into_the_next_epochs(noisy_dir):
    dataset = NoisyFolder(noisy_dir, crop_size=16, crops_per_epoch=10)
    beyond = dataset[23]
    dataset.set_epoch(2)
    assert torch.equal(beyond, dataset[3])


def test_crops_do_not_depend_on_the_number_of_workers(noisy_dir):
    dataset = NoisyFolder(noisy_dir, crop_size=16, crops_per_epoch=8, seed=1)
    dataset.set_epoch(4)
    single = torch.cat(list(DataLoader(dataset, batch_size=4, num_workers=0)))
    parallel = torch.cat(list(DataLoader(dataset, batch_size=4, num_workers=2)))
    assert torch.equal(single, parallel)


def test_crop_without_augmentation_is_a_window_of_the_image(tmp_path):
    save(tmp_path / "d" / "grid.png", coordinates_image(50, 60))
    dataset = NoisyFolder(tmp_path / "d", crop_size=10, horizontal_flip=False, vertical_flip=False)
    for index in range(6):
        crop = to_uint8(dataset[index]).astype(int)
        top, left = crop[0, 0, 0], crop[0, 0, 1]
        assert np.array_equal(crop, coordinates_image(50, 60)[top : top + 10, left : left + 10])


def test_flips_and_rotations_are_applied_when_switched_on(tmp_path):
    save(tmp_path / "d" / "grid.png", coordinates_image(30, 30))
    plain = NoisyFolder(tmp_path / "d", crop_size=30, horizontal_flip=False, vertical_flip=False)
    turned = NoisyFolder(tmp_path / "d", crop_size=30, rotate=True)
    corners = {tuple(to_uint8(turned[i])[0, 0, :2]) for i in range(24)}
    assert {tuple(to_uint8(plain[i])[0, 0, :2]) for i in range(8)} == {(0, 0)}
    assert corners == {(0, 0), (0, 29), (29, 0), (29, 29)}


def test_image_smaller_than_the_crop_is_reflect_padded(tmp_path):
    small = noise(5, 7)
    save(tmp_path / "d" / "small.png", small)
    dataset = NoisyFolder(tmp_path / "d", crop_size=12, horizontal_flip=False, vertical_flip=False)
    expected = np.pad(small, ((0, 7), (0, 5), (0, 0)), mode="reflect")
    assert np.array_equal(to_uint8(dataset[0]), expected)


def test_gray_images_become_three_equal_channels(tmp_path):
    save(tmp_path / "d" / "g.png", noise(20, 20, channels=1))
    crop = NoisyFolder(tmp_path / "d", crop_size=8)[0]
    assert torch.equal(crop[0], crop[1]) and torch.equal(crop[1], crop[2])


@pytest.mark.parametrize(
    ("sampling", "low", "high"), [("area", 0.0, 0.15), ("uniform", 0.35, 0.65)]
)
def test_images_are_drawn_by_area_or_uniformly(tmp_path, sampling, low, high):
    save(tmp_path / "d" / "big.png", np.full((64, 64, 3), 200, np.uint8))
    save(tmp_path / "d" / "small.png", np.full((16, 16, 3), 10, np.uint8))
    dataset = NoisyFolder(tmp_path / "d", crop_size=8, crops_per_epoch=300, sampling=sampling)
    small_share = np.mean([float(dataset[i].max()) < 0.5 for i in range(300)])
    assert low <= small_share <= high  # area: 256 / (4096 + 256) = 0.06 expected


def test_memory_cache_decodes_each_image_once(noisy_dir, monkeypatch):
    calls = count_decodes(monkeypatch)
    dataset = NoisyFolder(noisy_dir, crop_size=8, crops_per_epoch=40)
    for index in range(40):
        dataset[index]
    assert len(calls) == len(set(calls)) == 3


def test_memory_cache_budget_zero_decodes_every_item(noisy_dir, monkeypatch):
    calls = count_decodes(monkeypatch)
    dataset = NoisyFolder(noisy_dir, crop_size=8, memory_cache_bytes=0)
    for index in range(5):
        dataset[index]
    assert len(calls) == 5


def test_memory_cache_stays_within_its_budget(noisy_dir):
    budget = 40 * 48 * 3 + 10  # room for the largest image only
    dataset = NoisyFolder(noisy_dir, crop_size=8, memory_cache_bytes=budget)
    for index in range(30):
        dataset[index]
        assert dataset._memory_used <= budget


def test_pickled_dataset_leaves_the_memory_cache_behind(noisy_dir):
    dataset = NoisyFolder(noisy_dir, crop_size=8)
    for index in range(20):
        dataset[index]
    restored = pickle.loads(pickle.dumps(dataset))
    assert len(restored._memory) == 0 and torch.equal(restored[3], dataset[3])


def test_decoded_cache_gives_the_same_crops(noisy_dir, tmp_path):
    plain = NoisyFolder(noisy_dir, crop_size=16, seed=5)
    cached = NoisyFolder(noisy_dir, crop_size=16, seed=5, cache_dir=tmp_path / "cache")
    assert all(torch.equal(plain[i], cached[i]) for i in range(10))


def test_decoded_cache_is_built_once_and_reused(noisy_dir, tmp_path, monkeypatch):
    NoisyFolder(noisy_dir, crop_size=8, cache_dir=tmp_path / "cache")
    assert len(list((tmp_path / "cache").glob("*.bin"))) == 1
    calls = count_decodes(monkeypatch)
    reused = NoisyFolder(noisy_dir, crop_size=8, cache_dir=tmp_path / "cache")
    reused[0]
    assert calls == []


def test_decoded_cache_is_rebuilt_when_a_file_changes(noisy_dir, tmp_path, monkeypatch):
    NoisyFolder(noisy_dir, crop_size=8, cache_dir=tmp_path / "cache")
    changed = noisy_dir / "a.png"
    save(changed, np.zeros((40, 48, 3), np.uint8))
    status = changed.stat()
    os.utime(changed, ns=(status.st_atime_ns, status.st_mtime_ns + 10**9))
    calls = count_decodes(monkeypatch)
    cache = DecodedImageCache.open_or_build(noisy_dir, list_images(noisy_dir), tmp_path / "cache")
    assert len(calls) == 3 and cache.image(0).max() == 0


def test_decoded_cache_is_not_copied_into_a_pickle(noisy_dir, tmp_path):
    dataset = NoisyFolder(noisy_dir, crop_size=8, cache_dir=tmp_path / "cache")
    dataset[0]
    assert len(pickle.dumps(dataset)) < 10_000


def test_item_generator_streams_differ_between_neighbouring_items():
    a = torch.rand(4, generator=item_generator(0, 0, 1))
    b = torch.rand(4, generator=item_generator(0, 0, 2))
    c = torch.rand(4, generator=item_generator(0, 1, 1))
    assert not torch.equal(a, b) and not torch.equal(a, c)


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
    with caplog.at_level(logging.WARNING, logger="amsnet.data.folders"):
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
    # README: 60 crop pairs + 2 full-size pairs (X_Real.JPG + X_mean.JPG)
    assert len(PairedFolder(root / "CroppedImages", rule="polyu")) == 60
    assert len(PairedFolder(root, rule="polyu")) == 62


def test_polyu_mean_psnr_matches_the_readme():
    dataset = PairedFolder(shared_data("polyu") / "CroppedImages", rule="polyu")
    assert round(mean_psnr_uint8(dataset), 4) == 35.8974


def test_cc15_pairs_and_mean_psnr_match_the_readme():
    dataset = PairedFolder(shared_data("cc15"), rule="cc")
    assert len(dataset) == 15
    assert round(mean_psnr_uint8(dataset), 4) == 33.4142
