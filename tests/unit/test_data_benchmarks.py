"""SIDD and DND benchmark readers and submission writers, on tiny files in the real formats.

MATLAB v5 files are written with scipy.io.savemat; MATLAB v7.3 files with h5py the way MATLAB
writes them (512-byte user block with MATLAB's header, every array stored transposed, cell
arrays as object references into ``#refs#``, a ``MATLAB_class`` attribute on every variable).
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

import amsnet.data.benchmarks as benchmarks
from amsnet.data.benchmarks import (
    bundle_dnd_submission,
    DndBenchmark,
    read_dnd,
    read_sidd_benchmark,
    read_sidd_validation,
    seconds_per_megapixel,
    sidd_medium_files,
    SiddBlocks,
    spread_indices,
    write_dnd_box,
    write_sidd_submission,
    write_sidd_submission_csv,
)
from amsnet.errors import ConfigError, DataError, ShapeError

# --------------------------------------------------------------------------------------------
# writers of test files in the published formats


class Cell:
    """A MATLAB cell array of the given MATLAB shape (items in MATLAB's column-major order)."""

    def __init__(self, items: list[np.ndarray], shape: tuple[int, int]) -> None:
        self.items = items
        self.shape = shape


_CLASSES = {
    np.dtype(np.float64): "double",
    np.dtype(np.float32): "single",
    np.dtype(np.uint8): "uint8",
}


def _store_array(group: h5py.Group, name: str, array: np.ndarray) -> h5py.Dataset:
    # MATLAB is column-major: an H x W x 3 array appears to HDF5 as (3, W, H).
    dataset = group.create_dataset(name, data=np.ascontiguousarray(np.asarray(array).T))
    dataset.attrs["MATLAB_class"] = np.bytes_(_CLASSES[np.asarray(array).dtype])
    return dataset


def _store(file: h5py.File, group: h5py.Group, name: str, value: Any) -> None:
    if isinstance(value, dict):
        struct = group.create_group(name)
        struct.attrs["MATLAB_class"] = np.bytes_("struct")
        for key, item in value.items():
            _store(file, struct, key, item)
    elif isinstance(value, Cell):
        references = file.require_group("#refs#")
        cell = group.create_dataset(name, shape=value.shape[::-1], dtype=h5py.ref_dtype)
        cell.attrs["MATLAB_class"] = np.bytes_("cell")
        flat = cell[()].reshape(-1)
        for number, item in enumerate(value.items):
            target = _store_array(references, f"{name}_{len(references)}", item)
            flat[number] = target.ref
        # Column-major MATLAB order == C order of the reversed HDF5 shape.
        cell[()] = flat.reshape(value.shape[::-1])
    else:
        _store_array(group, name, value)


def write_mat73(path: Path, variables: dict[str, Any]) -> Path:
    """Write ``variables`` as MATLAB's ``save(path, ..., '-v7.3')`` would."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with h5py.File(path, "w", userblock_size=512) as file:
        for name, value in variables.items():
            _store(file, file, name, value)
    header = b"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: Mon Jan  1 00:00:00 2024 "
    header += b"HDF5 schema 1.00 ."
    with open(path, "r+b") as handle:
        handle.write(header.ljust(116, b" ") + bytes(8) + b"\x00\x02IM")
    return path


def make_dnd(
    root: Path,
    boxes: list[np.ndarray],
    size: tuple[int, int] = (12, 16),
    seed: int = 0,
) -> list[np.ndarray]:
    """A DND folder: ``info.mat`` with the boxes (per image, n x 4, 1-based inclusive) and
    one ``images_srgb/%04d.mat`` per image; returns the H x W x 3 float32 images."""
    rng = np.random.default_rng(seed)
    cell = Cell([np.asarray(b, dtype=np.float64) for b in boxes], shape=(len(boxes), 1))
    write_mat73(root / "info.mat", {"info": {"boundingboxes": cell}})
    images = []
    for number in range(1, len(boxes) + 1):
        image = rng.random((*size, 3), dtype=np.float32)
        write_mat73(root / "images_srgb" / f"{number:04d}.mat", {"InoisySRGB": image})
        images.append(image)
    return images


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
    monkeypatch.setattr(benchmarks, "SIDD_MEDIUM_SCENES", 1)
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


# --------------------------------------------------------------------------------------------
# DND


def test_dnd_boxes_are_one_based_and_inclusive(tmp_path: Path) -> None:
    boxes = [np.array([[1, 1, 4, 4], [3, 5, 6, 12]])]
    (image,) = make_dnd(tmp_path, boxes)
    dnd = read_dnd(tmp_path, strict=False)
    np.testing.assert_array_equal(dnd.crop(1, 1), image[:4, :4])
    np.testing.assert_array_equal(dnd.crop(1, 2), image[2:6, 4:12])
    assert dnd.crop(1, 2).shape == (4, 8, 3)


def test_dnd_reads_the_boxes_of_every_image(tmp_path: Path) -> None:
    boxes = [np.array([[1, 1, 4, 4], [2, 2, 5, 5]]), np.array([[9, 13, 12, 16], [1, 1, 4, 4]])]
    make_dnd(tmp_path, boxes)
    dnd = read_dnd(tmp_path, strict=False)
    assert isinstance(dnd, DndBenchmark)
    assert dnd.boxes.shape == (2, 2, 4) and dnd.boxes.dtype == np.int64
    np.testing.assert_array_equal(dnd.boxes[1], boxes[1])


def test_dnd_yields_every_box_with_one_based_indices(tmp_path: Path) -> None:
    boxes = [np.array([[1, 1, 4, 4], [9, 13, 12, 16]])] * 2
    images = make_dnd(tmp_path, boxes)
    crops = list(read_dnd(tmp_path, strict=False))
    assert [(c.image_index, c.box_index) for c in crops] == [(1, 1), (1, 2), (2, 1), (2, 2)]
    for crop in crops:
        assert crop.noisy.dtype == np.float32 and crop.noisy.flags.c_contiguous
    np.testing.assert_array_equal(crops[3].noisy, images[1][8:12, 12:16])


def test_dnd_tensors_are_chw(tmp_path: Path) -> None:
    (image,) = make_dnd(tmp_path, [np.array([[1, 1, 4, 4]])])
    crop = next(read_dnd(tmp_path, strict=False).tensors())
    assert crop.noisy.shape == (3, 4, 4)
    torch.testing.assert_close(crop.noisy, torch.from_numpy(image[:4, :4]).permute(2, 0, 1))


def test_dnd_image_is_the_whole_hwc_image(tmp_path: Path) -> None:
    (image,) = make_dnd(tmp_path, [np.array([[1, 1, 4, 4]])])
    np.testing.assert_array_equal(read_dnd(tmp_path, strict=False).image(1), image)


def test_dnd_strict_expects_50_images_of_20_boxes(tmp_path: Path) -> None:
    make_dnd(tmp_path, [np.array([[1, 1, 4, 4]])])
    with pytest.raises(DataError, match=r"info\.mat describes 1 images x 1 boxes.*50 x 20"):
        read_dnd(tmp_path)


def test_dnd_names_a_missing_image_file(tmp_path: Path) -> None:
    make_dnd(tmp_path, [np.array([[1, 1, 4, 4]])] * 2)
    (tmp_path / "images_srgb" / "0002.mat").unlink()
    with pytest.raises(DataError, match=r"lacks 1 image files \(0002\.mat\)"):
        read_dnd(tmp_path, strict=False)


def test_dnd_refuses_a_box_outside_the_image(tmp_path: Path) -> None:
    make_dnd(tmp_path, [np.array([[10, 1, 13, 4]])], size=(12, 16))
    dnd = read_dnd(tmp_path, strict=False)
    with pytest.raises(DataError, match=r"box 1 of image 1 \[10, 1, 13, 4\].*outside"):
        dnd.crop(1, 1)


def test_dnd_refuses_zero_based_boxes(tmp_path: Path) -> None:
    make_dnd(tmp_path, [np.array([[0, 0, 3, 3]])])
    with pytest.raises(DataError, match="start before pixel 1.*1-based and inclusive"):
        read_dnd(tmp_path, strict=False)


def test_dnd_refuses_a_v5_info_file(tmp_path: Path) -> None:
    make_dnd(tmp_path, [np.array([[1, 1, 4, 4]])])
    sio.savemat(tmp_path / "info.mat", {"info": {"boundingboxes": np.ones((1, 4))}})
    with pytest.raises(DataError, match=r"info\.mat is not an HDF5 \(MATLAB v7\.3\) file"):
        read_dnd(tmp_path, strict=False)


def test_dnd_refuses_boxes_stored_without_transposition(tmp_path: Path) -> None:
    # A writer that forgot MATLAB's column-major order stores (20, 4), read back as (4, 20).
    path = tmp_path / "info.mat"
    make_dnd(tmp_path, [np.array([[1, 1, 4, 4]])])
    with h5py.File(path, "r+") as file:
        reference = file["info"]["boundingboxes"][0, 0]
        name = file[reference].name
        del file[name]
        file[name] = np.ones((3, 4))
    with pytest.raises(DataError, match=r"shape \(4, 3\) after transposition"):
        read_dnd(tmp_path, strict=False)


def test_write_dnd_box_stores_a_float32_hwc_crop(tmp_path: Path) -> None:
    crop = np.random.default_rng(0).random((4, 6, 3))
    path = write_dnd_box(tmp_path, 3, 7, crop, strict=False)
    assert path.name == "0003_07.mat"
    stored = sio.loadmat(path)["Idenoised_crop"]
    assert stored.dtype == np.float32 and stored.shape == (4, 6, 3)
    np.testing.assert_array_equal(stored, crop.astype(np.float32))


def test_write_dnd_box_transposes_a_chw_tensor(tmp_path: Path) -> None:
    tensor = torch.rand(1, 3, 4, 6)
    path = write_dnd_box(tmp_path, 1, 1, tensor, strict=False)
    stored = sio.loadmat(path)["Idenoised_crop"]
    np.testing.assert_array_equal(stored, tensor[0].permute(1, 2, 0).numpy())


def test_write_dnd_box_refuses_uint8_crops(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match="divide 8-bit data by 255"):
        write_dnd_box(tmp_path, 1, 1, np.zeros((4, 4, 3), np.uint8), strict=False)


def test_write_dnd_box_refuses_non_finite_values(tmp_path: Path) -> None:
    crop = np.zeros((4, 4, 3), np.float32)
    crop[1, 2, 0] = np.nan
    with pytest.raises(DataError, match="NaN or infinite"):
        write_dnd_box(tmp_path, 1, 1, crop, strict=False)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(("image_index", "box_index"), [(0, 1), (51, 1), (1, 21)])
def test_write_dnd_box_strict_checks_the_indices(
    tmp_path: Path, image_index: int, box_index: int
) -> None:
    with pytest.raises(ConfigError, match="must be an integer in"):
        write_dnd_box(tmp_path, image_index, box_index, np.zeros((512, 512, 3), np.float32))


def test_write_dnd_box_strict_checks_the_crop_size(tmp_path: Path) -> None:
    with pytest.raises(ShapeError, match="512 x 512"):
        write_dnd_box(tmp_path, 1, 1, np.zeros((4, 4, 3), np.float32))


def _write_boxes(folder: Path, images: int, boxes: int) -> dict[tuple[int, int], np.ndarray]:
    rng = np.random.default_rng(0)
    crops = {}
    for image_index in range(1, images + 1):
        for box_index in range(1, boxes + 1):
            crop = rng.random((4, 4, 3), dtype=np.float32)
            write_dnd_box(folder, image_index, box_index, crop, strict=False)
            crops[image_index, box_index] = crop
    return crops


def test_bundle_writes_one_file_per_image_as_the_kit_does(tmp_path: Path) -> None:
    crops = _write_boxes(tmp_path, 2, 3)
    written = bundle_dnd_submission(tmp_path, images=2, boxes=3, crop_size=(4, 4))
    assert [p.relative_to(tmp_path).as_posix() for p in written] == [
        "bundled/0001.mat",
        "bundled/0002.mat",
    ]
    assert {name: (shape, kind) for name, shape, kind in sio.whosmat(written[1])} == {
        "Idenoised": ((1, 3), "cell"),
        "israw": ((1, 1), "logical"),
        "eval_version": ((1,), "char"),
    }
    contents = sio.loadmat(written[1])
    assert contents["israw"].item() == 0
    assert contents["eval_version"].item() == "1.0"
    for box_index in range(1, 4):
        stored = contents["Idenoised"][0, box_index - 1]
        assert stored.dtype == np.float32
        np.testing.assert_array_equal(stored, crops[2, box_index])


def test_bundle_lists_every_missing_box_and_writes_nothing(tmp_path: Path) -> None:
    _write_boxes(tmp_path, 2, 3)
    (tmp_path / "0001_02.mat").unlink()
    (tmp_path / "0002_01.mat").unlink()
    (tmp_path / "0002_03.mat").unlink()
    with pytest.raises(DataError, match=r"image 1: boxes 2; image 2: boxes 1, 3"):
        bundle_dnd_submission(tmp_path, images=2, boxes=3, crop_size=(4, 4))
    assert not (tmp_path / "bundled").exists()


def test_bundle_checks_the_crop_size(tmp_path: Path) -> None:
    _write_boxes(tmp_path, 1, 1)
    with pytest.raises(DataError, match=r"0001_01\.mat: Idenoised_crop is 4 x 4.*512 x 512"):
        bundle_dnd_submission(tmp_path, tmp_path / "out", images=1, boxes=1)


def test_bundle_refuses_a_corrupt_box_file(tmp_path: Path) -> None:
    _write_boxes(tmp_path, 1, 2)
    (tmp_path / "0001_02.mat").write_bytes(b"")
    with pytest.raises(DataError, match=r"0001_02\.mat is not a readable MATLAB v5 file"):
        bundle_dnd_submission(tmp_path, images=1, boxes=2, crop_size=None)


def test_bundle_refuses_to_write_into_the_box_folder(tmp_path: Path) -> None:
    _write_boxes(tmp_path, 1, 1)
    with pytest.raises(ConfigError, match="must differ"):
        bundle_dnd_submission(tmp_path, tmp_path, images=1, boxes=1, crop_size=None)
