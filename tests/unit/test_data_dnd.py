"""DND reader, per-box writer and bundler, on tiny files in the real formats.

The benchmark's files are MATLAB v7.3, written here with h5py the way MATLAB writes them
(:mod:`tests.unit.matfiles`); the submission files are MATLAB v5, read back with scipy.
"""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import scipy.io as sio
import torch

from amsnet.data.dnd import bundle_dnd_submission, DndBenchmark, read_dnd, write_dnd_box
from amsnet.errors import ConfigError, DataError, ShapeError
from tests.unit.matfiles import Cell, write_mat73


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
