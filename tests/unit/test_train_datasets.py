"""Training crops: NoisyFolder's rules, aligned pairs, every data kind, the step sampler."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from amsnet.config import TrainDataConfig
from amsnet.data.folders import list_images, NoisyFolder
from amsnet.errors import ConfigError, DataError
from amsnet.ops.downscale import box_downscale
from amsnet.training.datasets import (
    ArrayImages,
    build_train_dataset,
    FileImages,
    StepSampler,
    TrainingCrops,
)
from tests.unit.imagefiles import coordinates_image, noise, save


def noisy_folder(root, count=3):
    sizes = [(30, 41), (52, 37), (20, 18)]  # the last one is smaller than the crops
    for index in range(count):
        save(root / f"image{index}.png", noise(*sizes[index % 3]))
    return root


def pair_folder(root):
    """Noisy/clean pairs (rule folders) where clean = 255 - noisy, pixel by pixel."""
    for index, (height, width) in enumerate([(33, 40), (45, 29)]):
        pixels = noise(height, width)
        save(root / "noisy" / f"p{index}.png", pixels)
        save(root / "clean" / f"p{index}.png", 255 - pixels)
    return root


def sidd_medium(root, scenes=2):
    for number in range(1, scenes + 1):
        scene = root / "Data" / f"{number:04d}_001_S6_00100_00060_3200_L"
        for shot in ("010", "011"):
            pixels = noise(26, 31)
            save(scene / f"{number:04d}_NOISY_SRGB_{shot}.PNG", pixels)
            save(scene / f"{number:04d}_GT_SRGB_{shot}.PNG", 255 - pixels)
    return root


def data_config(**fields) -> TrainDataConfig:
    return TrainDataConfig(**{"crop_size": 24, "batch_size": 2, **fields})


@pytest.mark.parametrize("rotate", [False, True])
def test_crops_of_a_folder_are_noisyfolders_crops(tmp_path, rotate):
    root = noisy_folder(tmp_path)
    reference = NoisyFolder(root, crop_size=24, crops_per_epoch=5, seed=9, rotate=rotate)
    ours = TrainingCrops(
        FileImages(list_images(root), root), crop_size=24, crops_per_epoch=5, seed=9, rotate=rotate
    )
    for index in (0, 3, 4, 5, 12):  # past crops_per_epoch: the following epochs
        assert torch.equal(ours[index], reference[index])


def test_pairs_are_cropped_and_augmented_alike(tmp_path):
    root = pair_folder(tmp_path)
    config = data_config(
        kind="paired_folder", root=str(root / "noisy"), clean_root=str(root / "clean"), rotate=True
    )
    dataset = build_train_dataset(config, pd_factor=1, seed=0, with_clean=True)
    for index in range(12):
        item = dataset[index]
        assert item["noisy"].shape == (3, 24, 24)
        assert torch.allclose(item["noisy"] + item["clean"], torch.ones(3, 24, 24), atol=1e-6)


def test_self_supervised_training_never_gets_clean_images(tmp_path):
    root = pair_folder(tmp_path)
    config = data_config(
        kind="paired_folder", root=str(root / "noisy"), clean_root=str(root / "clean")
    )
    dataset = build_train_dataset(config, pd_factor=2, seed=0, with_clean=False)
    assert dataset.clean is None and isinstance(dataset[0], torch.Tensor)


def test_sidd_medium_pairs_each_noisy_image_with_its_ground_truth(tmp_path):
    root = sidd_medium(tmp_path)
    config = data_config(kind="sidd_medium", root=str(root), strict=False, crop_size=20)
    noisy_only = build_train_dataset(config, pd_factor=5, seed=0, with_clean=False)
    assert len(noisy_only.noisy) == 4 and noisy_only.clean is None
    assert all("NOISY" in path.name for path in noisy_only.noisy.paths)
    paired = build_train_dataset(config, pd_factor=5, seed=0, with_clean=True)
    item = paired[3]
    assert torch.allclose(item["noisy"] + item["clean"], torch.ones(3, 20, 20), atol=1e-6)


def test_memory_mapped_cache_gives_the_same_crops(tmp_path):
    root = sidd_medium(tmp_path / "sidd")
    config = data_config(kind="sidd_medium", root=str(root), strict=False)
    cached = data_config(
        kind="sidd_medium", root=str(root), strict=False, cache_dir=str(tmp_path / "cache")
    )
    plain = build_train_dataset(config, pd_factor=1, seed=0, with_clean=True)
    mapped = build_train_dataset(cached, pd_factor=1, seed=0, with_clean=True)
    for index in range(5):
        assert torch.equal(plain[index]["clean"], mapped[index]["clean"])
    assert sorted(p.name for p in (tmp_path / "cache").iterdir()) == ["clean", "noisy"]


def test_synthetic_camera_noise_is_fixed_per_photo(tmp_path):
    save(tmp_path / "photo.png", coordinates_image(40, 44))
    config = data_config(kind="synthetic_camera", source=str(tmp_path), noise_level="high")
    first = build_train_dataset(config, pd_factor=2, seed=0, with_clean=True)
    second = build_train_dataset(config, pd_factor=2, seed=5, with_clean=True)
    noisy = first.noisy.image(0)
    assert np.array_equal(noisy, second.noisy.image(0))  # the crop seed does not change it
    assert noisy.dtype == np.float32 and noisy.shape == (40, 44, 3)
    residual = noisy - first.clean.image(0)
    assert 0.01 < residual.std() < 0.2
    other = data_config(kind="synthetic_camera", source=str(tmp_path), noise_seed=1)
    changed = build_train_dataset(other, pd_factor=2, seed=0, with_clean=False)
    assert not np.array_equal(changed.noisy.image(0), noisy)


def test_a_missing_folder_names_the_config_key_and_the_path(tmp_path):
    for kind in ("noisy_folder", "sidd_medium"):
        config = data_config(kind=kind, root=str(tmp_path / "absent"))
        with pytest.raises(DataError, match=rf"data\.train\.root \({tmp_path}/absent\).*check"):
            build_train_dataset(config, pd_factor=1, seed=0, with_clean=False)
    config = data_config(kind="synthetic_camera", source=str(tmp_path / "gone"))
    with pytest.raises(DataError, match=r"data\.train\.source"):
        build_train_dataset(config, pd_factor=1, seed=0, with_clean=False)


def test_pairs_of_different_sizes_are_reported(tmp_path):
    images = ArrayImages([np.zeros((30, 30, 3), np.float32)], ["a"])
    clean = ArrayImages([np.zeros((30, 31, 3), np.float32)], ["a-clean"])
    with pytest.raises(DataError, match="a pair must have one size"):
        TrainingCrops(images, clean, crop_size=8)[0]


def test_crop_size_must_fit_the_pd_factor():
    images = ArrayImages([np.zeros((30, 30, 3), np.float32)], ["a"])
    with pytest.raises(ConfigError, match="use 20 or 25"):
        TrainingCrops(images, crop_size=24, pd_factor=5)


def test_step_sampler_shares_the_global_crops_between_processes():
    single = list(StepSampler(2, 5, 4, rank=0, world_size=1))
    assert single == list(range(8, 20))
    shares = [list(StepSampler(2, 5, 2, rank=rank, world_size=2)) for rank in range(2)]
    assert sorted(shares[0] + shares[1]) == single  # same crops, split between the ranks
    assert set(shares[0]).isdisjoint(shares[1])
    assert len(StepSampler(2, 5, 2, rank=1, world_size=2)) == 6


# -- scale augmentation (downscale_factors) --------------------------------------------------


def checkerboard(height: int, width: int) -> np.ndarray:
    """A one-pixel black-and-white checkerboard: every 2x2 block averages to mid-grey."""
    rows, columns = np.indices((height, width))
    board = ((rows + columns) % 2 * 255).astype(np.uint8)
    return np.repeat(board[:, :, None], 3, axis=2)


def test_box_downscale_is_the_block_mean_and_rounds_only_when_asked():
    pixels = torch.rand(3, 7, 9, generator=torch.Generator().manual_seed(0))
    small = box_downscale(pixels, 2)
    assert small.shape == (3, 3, 4)  # the incomplete last row and column are dropped
    assert torch.allclose(small[:, 1, 2], pixels[:, 2:4, 4:6].mean((1, 2)))
    rounded = box_downscale(pixels, 2, levels=255)
    assert torch.equal(rounded, torch.round(small * 255) / 255)
    assert box_downscale(pixels, 1) is pixels
    assert torch.equal(box_downscale(pixels[None], 3)[0], box_downscale(pixels, 3))


def test_downscaled_pairs_stay_pairs_at_the_lower_resolution():
    board = checkerboard(40, 40)
    images = ArrayImages([board], ["board"])
    crops = TrainingCrops(
        images, images, crop_size=8, crops_per_epoch=40, seed=3, downscale_factors=(1, 2)
    )
    scales = set()
    for index in range(40):
        item = crops[index]
        assert item["noisy"].shape == item["clean"].shape == (3, 8, 8)
        if torch.all(item["clean"] == 0.5):  # a 2x crop, averaged over 2x2 blocks
            scales.add(2)
            # The noisy side is rounded back to 8-bit levels, the target is exact.
            assert torch.equal(item["noisy"], torch.full_like(item["noisy"], 128 / 255))
        else:
            scales.add(1)
            assert set(item["clean"].unique().tolist()) == {0.0, 1.0}
    assert scales == {1, 2}


def test_without_downscaling_the_crops_are_unchanged():
    images = ArrayImages([noise(50, 60)], ["noise"])
    plain = TrainingCrops(images, crop_size=16, crops_per_epoch=6, seed=5)
    listed = TrainingCrops(images, crop_size=16, crops_per_epoch=6, seed=5, downscale_factors=(1,))
    for index in range(6):
        assert torch.equal(plain[index], listed[index])


@pytest.mark.parametrize("factors", [(), (0,), (9,), (1.5,), (True,)])
def test_bad_downscale_factors_are_refused(factors):
    images = ArrayImages([noise(50, 60)], ["noise"])
    with pytest.raises(ConfigError, match="downscale_factors"):
        TrainingCrops(images, crop_size=16, downscale_factors=factors)


def test_distillation_regions_must_hold_the_largest_downscaled_crop():
    fields = {"kind": "distillation", "root": "x", "teacher": "t", "cache_dir": "c"}
    data_config(**fields, region_size=72, downscale_factors=[1, 3])  # 24 x 3 fits
    with pytest.raises(ValueError, match="region_size 64 .* raise region_size to 72"):
        data_config(**fields, region_size=64, downscale_factors=[1, 3])
    with pytest.raises(ValueError, match="downscale_factors must lie between 1 and 8"):
        data_config(**fields, region_size=300, downscale_factors=[12])


def test_noise_scales_weaken_the_noise_over_the_same_target():
    clean = np.full((40, 40, 3), 100, np.uint8)
    noisy = clean.copy()
    noisy[::2, ::2] = 140  # noise of +40 levels on a quarter of the pixels
    crops = TrainingCrops(
        ArrayImages([noisy], ["noisy"]),
        ArrayImages([clean], ["clean"]),
        crop_size=8,
        crops_per_epoch=40,
        seed=1,
        horizontal_flip=False,
        vertical_flip=False,
        noise_scales=(1.0, 0.5, 0.0),
    )
    heights = set()
    for index in range(40):
        item = crops[index]
        assert torch.equal(item["clean"], torch.full_like(item["clean"], 100 / 255))
        # The noisy side stays on 8-bit levels: 140, 120 or 100.
        heights.add(round(float(item["noisy"].max()) * 255))
    assert heights == {140, 120, 100}


def test_without_noise_scales_the_pairs_are_those_of_earlier_versions():
    images = ArrayImages([noise(50, 60)], ["noise"])
    others = ArrayImages([noise(50, 60)[::-1].copy()], ["other"])
    plain = TrainingCrops(
        images, others, crop_size=16, crops_per_epoch=6, seed=5, downscale_factors=(1, 2)
    )
    listed = TrainingCrops(
        images,
        others,
        crop_size=16,
        crops_per_epoch=6,
        seed=5,
        downscale_factors=(1, 2),
        noise_scales=(1.0,),
    )
    for index in range(6):
        assert torch.equal(plain[index]["noisy"], listed[index]["noisy"])
        assert torch.equal(plain[index]["clean"], listed[index]["clean"])


@pytest.mark.parametrize("scales", [(), (1.5,), (-0.1,), (float("nan"),), (True,)])
def test_bad_noise_scales_are_refused(scales):
    images = ArrayImages([noise(50, 60)], ["noise"])
    with pytest.raises(ConfigError, match="noise_scales"):
        TrainingCrops(images, images, crop_size=16, noise_scales=scales)


def test_noise_scales_need_targets():
    images = ArrayImages([noise(50, 60)], ["noise"])
    with pytest.raises(ConfigError, match="noise_scales .* needs a target"):
        TrainingCrops(images, crop_size=16, noise_scales=(1.0, 0.5))
    with pytest.raises(ValueError, match="noise_scales must lie between 0 and 1"):
        data_config(kind="noisy_folder", root="x", noise_scales=[2.0])
