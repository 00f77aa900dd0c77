"""Folder datasets: image listing, random training crops, in-memory and decoded-image caches."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

import amsnet.data.cache as cache
import amsnet.data.sources as sources
from amsnet.data.cache import DecodedImageCache
from amsnet.data.crops import item_generator
from amsnet.data.folders import list_images, NoisyFolder
from amsnet.data.io import to_uint8
from amsnet.errors import ConfigError, DataError
from tests.unit.imagefiles import coordinates_image, noise, save


def count_decodes(monkeypatch):
    calls = []
    original = sources.read_array

    def counting(path):
        calls.append(path)
        return original(path)

    monkeypatch.setattr(sources, "read_array", counting)
    monkeypatch.setattr(cache, "read_array", counting)
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
        assert dataset._memory._used <= budget


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
