"""SIDD readers and submission writers, on tiny files in the real formats.

MATLAB v5 files are written with scipy.io.savemat; MATLAB v7.3 files with h5py the way MATLAB
writes them (:mod:`tests.unit.matfiles`).
"""

from __future__ import annotations

import base64
import csv
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest
import scipy.io as sio
import torch
from PIL import Image

import amsnet.data.sidd as sidd
from amsnet.data.sidd import (
    read_sidd_benchmark,
    read_sidd_validation,
    seconds_per_megapixel,
    sidd_medium_files,
    write_sidd_submission,
    write_sidd_submission_csv,
)
from amsnet.data.sidd_blocks import SiddBlocks, spread_indices
from amsnet.errors import ConfigError, DataError, ShapeError
from tests.unit.matfiles import write_mat73

# --------------------------------------------------------------------------------------------
# writers of test files in the published formats


def blocks_array(shape: tuple[int, ...], seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)


def make_validation(root: Path, shape=(3, 4, 8, 8, 3), names=None) -> tuple[np.ndarray, ...]:
    noisy, clean = blocks_array(shape, 1), blocks_array(shape, 2)
    noisy_name, clean_name = names or ("ValidationNoisyBlocksSrgb", "ValidationGtBlocksSrgb")
    root.mkdir(parents=True, exist_ok=True)
    sio.savemat(root / f"{noisy_name}.mat", {"ValidationNoisyBlocksSrgb": noisy})
    sio.savemat(root / f"{clean_name}.mat", {"ValidationGtBlocksSrgb": clean})
    return noisy, clean


def make_medium(root: Path, scenes: int, *, prefix: bool = True, suffix: str = ".PNG") -> None:
    pixels = np.zeros((2, 2, 3), dtype=np.uint8)
    for number in range(1, scenes + 1):
        scene = root / "Data" / f"{number:04d}_001_S6_00100_00060_3200_L"
        scene.mkdir(parents=True)
        for kind in ("NOISY", "GT"):
            for shot in ("010", "011"):
                name = f"{number:04d}_" if prefix else ""
                Image.fromarray(pixels).save(scene / f"{name}{kind}_SRGB_{shot}{suffix}")


# --------------------------------------------------------------------------------------------
# SIDD Medium


def test_sidd_medium_lists_noisy_images_by_scene_then_shot(tmp_path: Path) -> None:
    make_medium(tmp_path, 2)
    files = sidd_medium_files(tmp_path, strict=False)
    assert [(f.parent.name[:4], f.name) for f in files] == [
        ("0001", "0001_NOISY_SRGB_010.PNG"),
        ("0001", "0001_NOISY_SRGB_011.PNG"),
        ("0002", "0002_NOISY_SRGB_010.PNG"),
        ("0002", "0002_NOISY_SRGB_011.PNG"),
    ]


def test_sidd_medium_pairs_each_noisy_image_with_its_ground_truth(tmp_path: Path) -> None:
    make_medium(tmp_path, 2)
    pairs = sidd_medium_files(tmp_path, noisy_only=False, strict=False)
    assert len(pairs) == 4
    for noisy, clean in pairs:
        assert clean.parent == noisy.parent
        assert clean.name == noisy.name.replace("NOISY", "GT")


def test_sidd_medium_accepts_the_data_folder_lowercase_and_unprefixed_names(
    tmp_path: Path,
) -> None:
    make_medium(tmp_path, 1, prefix=False, suffix=".png")
    files = sidd_medium_files(tmp_path / "Data", strict=False)
    assert [f.name for f in files] == ["NOISY_SRGB_010.png", "NOISY_SRGB_011.png"]


def test_sidd_medium_skips_hidden_folders(tmp_path: Path) -> None:
    make_medium(tmp_path, 1)
    (tmp_path / "Data" / "__MACOSX").mkdir()
    assert len(sidd_medium_files(tmp_path, strict=False)) == 2


def test_sidd_medium_strict_expects_160_scenes(tmp_path: Path) -> None:
    make_medium(tmp_path, 2)
    with pytest.raises(DataError, match=r"holds 2 scene folders.*160.*strict=False"):
        sidd_medium_files(tmp_path)


def test_sidd_medium_strict_expects_both_shots(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    make_medium(tmp_path, 1)
    scene = next((tmp_path / "Data").iterdir())
    (scene / "0001_NOISY_SRGB_011.PNG").unlink()
    # strict=True also checks the scene count: make one scene the published count here.
    monkeypatch.setattr(sidd, "SIDD_MEDIUM_SCENES", 1)
    with pytest.raises(DataError, match=r"lacks NOISY_SRGB_011\.PNG"):
        sidd_medium_files(tmp_path)


def test_sidd_medium_names_a_missing_ground_truth(tmp_path: Path) -> None:
    make_medium(tmp_path, 1)
    scene = next((tmp_path / "Data").iterdir())
    (scene / "0001_GT_SRGB_010.PNG").unlink()
    assert len(sidd_medium_files(tmp_path, strict=False)) == 2  # noisy only: still fine
    with pytest.raises(DataError, match=r"0001_NOISY_SRGB_010\.PNG but no GT_SRGB_010"):
        sidd_medium_files(tmp_path, noisy_only=False, strict=False)


def test_sidd_medium_without_scenes_says_what_it_expected(tmp_path: Path) -> None:
    (tmp_path / "Data").mkdir()
    with pytest.raises(DataError, match=r"no scene folders.*SIDD_Medium_Srgb/Data/<scene>"):
        sidd_medium_files(tmp_path, strict=False)


# --------------------------------------------------------------------------------------------
# SIDD validation and benchmark


def test_validation_yields_every_block_in_image_major_order(tmp_path: Path) -> None:
    noisy, clean = make_validation(tmp_path)
    blocks = read_sidd_validation(tmp_path, strict=False)
    items = list(blocks)
    assert len(blocks) == len(items) == 12
    for expected_index, (index, noisy_block, clean_block) in enumerate(items):
        image, block = blocks.position(index)
        assert index == expected_index
        assert (image, block) == divmod(expected_index, 4)
        assert noisy_block.dtype == np.uint8 and noisy_block.shape == (8, 8, 3)
        np.testing.assert_array_equal(noisy_block, noisy[image, block])
        np.testing.assert_array_equal(clean_block, clean[image, block])


def test_validation_blocks_are_views_of_the_file_arrays(tmp_path: Path) -> None:
    make_validation(tmp_path)
    blocks = read_sidd_validation(tmp_path, strict=False)
    _, noisy_block, clean_block = blocks[5]
    assert np.shares_memory(noisy_block, blocks.noisy)
    assert blocks.clean is not None and np.shares_memory(clean_block, blocks.clean)


def test_validation_subset_takes_one_block_from_every_image(tmp_path: Path) -> None:
    make_validation(tmp_path, shape=(5, 8, 4, 4, 3))
    blocks = read_sidd_validation(tmp_path, subset=5, strict=False)
    images = [blocks.position(index)[0] for index, _, _ in blocks]
    assert images == [0, 1, 2, 3, 4]


def test_validation_small_subset_is_spread_not_taken_from_the_first_image(
    tmp_path: Path,
) -> None:
    make_validation(tmp_path, shape=(5, 8, 4, 4, 3))
    blocks = read_sidd_validation(tmp_path, subset=3, strict=False)
    images = [blocks.position(index)[0] for index, _, _ in blocks]
    assert len(set(images)) == 3 and images[-1] >= 3


@pytest.mark.parametrize("count", [40, 41, 100, 1279, 1280])
def test_spread_of_at_least_40_blocks_touches_all_40_images(count: int) -> None:
    images = spread_indices(1280, count) // 32
    assert set(images.tolist()) == set(range(40))


def test_spread_indices_are_run_centres() -> None:
    indices = spread_indices(1280, 40)
    np.testing.assert_array_equal(indices, np.arange(40) * 32 + 16)
    assert spread_indices(7, 7).tolist() == list(range(7))
    assert spread_indices(10, 1).tolist() == [5]


@pytest.mark.parametrize("count", [0, 11, 2.5, True])
def test_spread_indices_rejects_counts_out_of_range(count: Any) -> None:
    with pytest.raises(ConfigError, match="between 1 and 10"):
        spread_indices(10, count)


def test_spread_of_a_spread_selects_from_the_subset(tmp_path: Path) -> None:
    make_validation(tmp_path, shape=(4, 4, 2, 2, 3))
    subset = read_sidd_validation(tmp_path, subset=8, strict=False)
    smaller = subset.spread(2)
    assert set(smaller.indices.tolist()) <= set(subset.indices.tolist())


def test_validation_accepts_file_names_in_another_case(tmp_path: Path) -> None:
    noisy, _ = make_validation(
        tmp_path, names=("validationnoisyblockssrgb", "VALIDATIONGTBLOCKSSRGB")
    )
    blocks = read_sidd_validation(tmp_path, strict=False)
    np.testing.assert_array_equal(blocks[0].noisy, noisy[0, 0])


def test_validation_strict_expects_the_published_shape(tmp_path: Path) -> None:
    make_validation(tmp_path)
    with pytest.raises(DataError, match=r"ValidationNoisyBlocksSrgb\.mat.*\(40, 32, 256, 256, 3\)"):
        read_sidd_validation(tmp_path)


def test_validation_rejects_blocks_that_are_not_uint8(tmp_path: Path) -> None:
    make_validation(tmp_path)
    sio.savemat(
        tmp_path / "ValidationGtBlocksSrgb.mat",
        {"ValidationGtBlocksSrgb": np.zeros((3, 4, 8, 8, 3))},
    )
    with pytest.raises(DataError, match=r"ValidationGtBlocksSrgb\.mat.*double"):
        read_sidd_validation(tmp_path, strict=False)


def test_validation_rejects_files_of_different_shapes(tmp_path: Path) -> None:
    make_validation(tmp_path)
    sio.savemat(
        tmp_path / "ValidationGtBlocksSrgb.mat",
        {"ValidationGtBlocksSrgb": blocks_array((3, 2, 8, 8, 3))},
    )
    with pytest.raises(DataError, match="same release"):
        read_sidd_validation(tmp_path, strict=False)


def test_validation_names_a_missing_file(tmp_path: Path) -> None:
    make_validation(tmp_path)
    (tmp_path / "ValidationGtBlocksSrgb.mat").unlink()
    with pytest.raises(DataError, match=r"ValidationGtBlocksSrgb\.mat is not in"):
        read_sidd_validation(tmp_path, strict=False)


def test_validation_names_a_missing_variable(tmp_path: Path) -> None:
    make_validation(tmp_path)
    sio.savemat(tmp_path / "ValidationGtBlocksSrgb.mat", {"blocks": blocks_array((3, 4, 8, 8, 3))})
    with pytest.raises(DataError, match=r"no variable ValidationGtBlocksSrgb \(found: blocks\)"):
        read_sidd_validation(tmp_path, strict=False)


def test_validation_refuses_a_v73_file(tmp_path: Path) -> None:
    make_validation(tmp_path)
    write_mat73(
        tmp_path / "ValidationNoisyBlocksSrgb.mat",
        {"ValidationNoisyBlocksSrgb": blocks_array((3, 4, 8, 8, 3))},
    )
    with pytest.raises(DataError, match=r"ValidationNoisyBlocksSrgb\.mat is a MATLAB v7\.3"):
        read_sidd_validation(tmp_path, strict=False)


@pytest.mark.parametrize("contents", [b"", b"not a MATLAB file at all" * 8])
def test_validation_refuses_a_corrupt_file(tmp_path: Path, contents: bytes) -> None:
    make_validation(tmp_path)
    (tmp_path / "ValidationGtBlocksSrgb.mat").write_bytes(contents)
    with pytest.raises(DataError, match=r"ValidationGtBlocksSrgb\.mat is not a readable MATLAB"):
        read_sidd_validation(tmp_path, strict=False)


def test_tensors_are_float_chw_blocks_divided_by_255(tmp_path: Path) -> None:
    noisy, _ = make_validation(tmp_path)
    index, noisy_tensor, clean_tensor = next(read_sidd_validation(tmp_path, strict=False).tensors())
    assert index == 0
    assert noisy_tensor.dtype == torch.float32 and noisy_tensor.shape == (3, 8, 8)
    assert noisy_tensor.is_contiguous()
    expected = torch.from_numpy(noisy[0, 0].astype(np.float32) / 255).permute(2, 0, 1)
    torch.testing.assert_close(noisy_tensor, expected)
    assert float(clean_tensor.max()) <= 1.0


def test_benchmark_yields_noisy_blocks_without_ground_truth(tmp_path: Path) -> None:
    noisy = blocks_array((2, 3, 8, 8, 3))
    sio.savemat(tmp_path / "BenchmarkNoisyBlocksSrgb.mat", {"BenchmarkNoisyBlocksSrgb": noisy})
    blocks = read_sidd_benchmark(tmp_path, strict=False)
    assert isinstance(blocks, SiddBlocks) and len(blocks) == 6
    _, block, clean = blocks[4]
    assert clean is None
    np.testing.assert_array_equal(block, noisy[1, 1])


# --------------------------------------------------------------------------------------------
# SIDD submission


def test_submission_v5_round_trips_every_block(tmp_path: Path) -> None:
    blocks = blocks_array((2, 3, 8, 8, 3))
    path = write_sidd_submission(
        tmp_path / "SubmitSrgb.mat",
        blocks,
        0.25,
        optional_data={"MethodName": "AMSNet-P-E", "Authors": "A. B."},
        strict=False,
    )
    contents = sio.loadmat(path)
    cells = contents["DenoisedBlocksSrgb"]
    assert cells.dtype == object and cells.shape == (2, 3)
    for image in range(2):
        for block in range(3):
            assert cells[image, block].dtype == np.uint8
            np.testing.assert_array_equal(cells[image, block], blocks[image, block])
    assert contents["TimeMPSrgb"].item() == 0.25
    optional = contents["OptionalData"][0, 0]
    assert optional["MethodName"].item() == "AMSNet-P-E"
    assert optional["Authors"].item() == "A. B."


def test_submission_v5_is_a_cell_array_and_a_struct(tmp_path: Path) -> None:
    path = write_sidd_submission(
        tmp_path / "SubmitSrgb.mat", blocks_array((2, 3, 8, 8, 3)), 1.0, strict=False
    )
    classes = {name: (shape, kind) for name, shape, kind in sio.whosmat(path)}
    assert classes == {
        "DenoisedBlocksSrgb": ((2, 3), "cell"),
        "TimeMPSrgb": ((1, 1), "double"),
        "OptionalData": ((1, 1), "struct"),
    }


def test_submission_v73_round_trips_every_block(tmp_path: Path) -> None:
    blocks = blocks_array((2, 3, 8, 8, 3))
    path = write_sidd_submission(
        tmp_path / "SubmitSrgb.mat",
        blocks,
        0.5,
        optional_data={"MethodName": "AMSNet", "Year": 2024},
        mat_format="v7.3",
        strict=False,
    )
    assert path.read_bytes()[:19] == b"MATLAB 7.3 MAT-file"
    with h5py.File(path, "r") as file:
        cell = file["DenoisedBlocksSrgb"]
        assert cell.attrs["MATLAB_class"] == b"cell"
        assert cell.shape == (3, 2)  # MATLAB's 2 x 3, stored transposed
        for image in range(2):
            for block in range(3):
                stored = file[cell[block, image]]
                assert stored.attrs["MATLAB_class"] == b"uint8"
                np.testing.assert_array_equal(stored[()].T, blocks[image, block])
        assert file["TimeMPSrgb"][()].item() == 0.5
        struct = file["OptionalData"]
        assert struct.attrs["MATLAB_class"] == b"struct"
        name = struct["MethodName"]
        assert name.attrs["MATLAB_class"] == b"char"
        assert "".join(map(chr, name[()].ravel())) == "AMSNet"
        assert struct["Year"][()].item() == 2024.0


def test_submission_accepts_an_object_array_of_blocks(tmp_path: Path) -> None:
    blocks = blocks_array((2, 3, 8, 8, 3))
    cells = np.empty((2, 3), dtype=object)
    for image in range(2):
        for block in range(3):
            cells[image, block] = blocks[image, block]
    path = write_sidd_submission(tmp_path / "SubmitSrgb.mat", cells, 1.0, strict=False)
    np.testing.assert_array_equal(sio.loadmat(path)["DenoisedBlocksSrgb"][1, 2], blocks[1, 2])


def test_submission_refuses_float_blocks_and_says_how_to_quantise(tmp_path: Path) -> None:
    blocks = np.zeros((2, 3, 8, 8, 3), dtype=np.float32)
    with pytest.raises(ShapeError, match=r"needs uint8.*np\.round"):
        write_sidd_submission(tmp_path / "SubmitSrgb.mat", blocks, 1.0, strict=False)
    assert not (tmp_path / "SubmitSrgb.mat").exists()


def test_submission_strict_needs_40_by_32_blocks(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match=r"40 x 32 blocks, got 2 x 3"):
        write_sidd_submission(tmp_path / "SubmitSrgb.mat", blocks_array((2, 3, 8, 8, 3)), 1.0)


def test_submission_names_the_block_of_another_shape(tmp_path: Path) -> None:
    cells = np.empty((1, 2), dtype=object)
    cells[0, 0] = blocks_array((8, 8, 3))
    cells[0, 1] = blocks_array((8, 4, 3))
    with pytest.raises(ShapeError, match=r"image 0, block 1"):
        write_sidd_submission(tmp_path / "SubmitSrgb.mat", cells, 1.0, strict=False)


@pytest.mark.parametrize(
    ("options", "pattern"),
    [
        ({"time_per_megapixel": -1.0}, "time_per_megapixel"),
        ({"time_per_megapixel": float("nan")}, "time_per_megapixel"),
        ({"optional_data": {"Method Name": "x"}}, "not a MATLAB field name"),
        ({"optional_data": {"MethodName": ""}}, "non-empty string"),
        ({"optional_data": {}}, "at least one field"),
        ({"mat_format": "v7"}, "mat_format"),
    ],
)
def test_submission_rejects_bad_settings(tmp_path: Path, options: dict, pattern: str) -> None:
    arguments = {"time_per_megapixel": 1.0, **options}
    with pytest.raises(ConfigError, match=pattern):
        write_sidd_submission(
            tmp_path / "SubmitSrgb.mat", blocks_array((1, 1, 2, 2, 3)), strict=False, **arguments
        )


def test_submission_csv_holds_base64_blocks_in_image_major_order(tmp_path: Path) -> None:
    blocks = blocks_array((2, 3, 8, 8, 3))
    path = write_sidd_submission_csv(tmp_path / "SubmitSrgb.csv", blocks, strict=False)
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["ID", "BLOCK"]
    assert [int(row[0]) for row in rows[1:]] == list(range(6))
    for index, encoded in rows[1:]:
        image, block = divmod(int(index), 3)
        decoded = np.frombuffer(base64.b64decode(encoded), dtype=np.uint8).reshape(8, 8, 3)
        np.testing.assert_array_equal(decoded, blocks[image, block])


def test_seconds_per_megapixel_uses_the_kits_binary_megapixel() -> None:
    assert seconds_per_megapixel(2.0, 1024 * 1024) == 2.0
    assert seconds_per_megapixel(80.0, 1280 * 256 * 256) == 1.0
    with pytest.raises(ConfigError):
        seconds_per_megapixel(1.0, 0)
