"""The DND sRGB benchmark (Plötz and Roth, CVPR 2017): noisy crops in, submission files out.

Read and written as the official Python kit does (``dnd_denoise.py``,
``bundle_submissions.py``, also shipped in AP-BSN's ``src/util/dnd_submission``):

* ``info.mat`` (MATLAB v7.3 = HDF5): ``info/boundingboxes`` holds one object reference per image;
  each refers to a stored ``(4, 20)`` array, i.e. MATLAB's 20 x 4 ``[row0, col0, row1, col1]``,
  1-based and inclusive. ``images_srgb/%04d.mat`` (v7.3) holds ``InoisySRGB``, float in
  ``[0, 1]``, stored ``(3, W, H)`` (MATLAB's H x W x 3 transposed) (:func:`read_dnd`).
* Per box ``%04d_%02d.mat`` with ``Idenoised_crop`` (float32 H x W x 3) (:func:`write_dnd_box`),
  then per image ``bundled/%04d.mat`` with ``Idenoised`` (a 1 x 20 cell: the kit builds a
  ``(20,)`` object array, which scipy stores as a 1 x 20 cell, the shape the MATLAB kit's
  ``cell(1, 20)`` has too), ``israw`` (false) and ``eval_version`` (``"1.0"``)
  (:func:`bundle_dnd_submission`). Upload the 50 bundled files.

h5py (reading) and scipy (writing) are optional dependencies (``pip install amsnet[mat]``; see
:mod:`amsnet.data.matlab`).

Example:
    >>> from amsnet.data.dnd import read_dnd, write_dnd_box  # doctest: +SKIP
    >>> for image_index, box_index, noisy in read_dnd("DND/"):  # doctest: +SKIP
    ...     write_dnd_box("submission/", image_index, box_index, denoise(noisy))
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any, NamedTuple

import numpy as np
import torch

from amsnet.atomic import atomic_path
from amsnet.data.matlab import (
    existing_folder,
    find_entry,
    import_h5py,
    import_scipy_io,
    listing,
    PathLike,
    require_file,
    SHOWN,
)
from amsnet.errors import ConfigError, DataError, ShapeError

# The DND sRGB benchmark: 50 images, 20 boxes each, every box 512 x 512 pixels.
DND_IMAGES = 50
DND_BOXES = 20
DND_CROP = 512


def _float_hwc_to_tensor(crop: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32))


class DndCrop(NamedTuple):
    """One DND box.

    Attributes:
        image_index: 1 .. 50, the number in ``images_srgb/%04d.mat``.
        box_index: 1 .. 20.
        noisy: float32 ``(512, 512, 3)`` RGB in ``[0, 1]``, or a float32 ``(3, 512, 512)``
            tensor from :meth:`DndBenchmark.tensors`.
    """

    image_index: int
    box_index: int
    noisy: Any


def _open_h5(file: Path) -> Any:
    """``file`` opened read-only as an ``h5py.File``; a file that is not HDF5 is an error."""
    h5py = import_h5py(file)
    try:
        return h5py.File(file, "r")
    except OSError as error:
        raise DataError(
            f"{file} is not an HDF5 (MATLAB v7.3) file ({error}); the DND files are v7.3: "
            "download them again"
        ) from error


def _read_dnd_boxes(file: Path) -> np.ndarray:
    h5py = import_h5py(file)
    with _open_h5(file) as handle:
        info = handle.get("info")
        references = None if not isinstance(info, h5py.Group) else info.get("boundingboxes")
        if (
            not isinstance(references, h5py.Dataset)
            or h5py.check_dtype(ref=references.dtype) is not h5py.Reference
        ):
            raise DataError(
                f"{file} has no info.boundingboxes cell array (object references); is it the "
                "DND info.mat?"
            )
        boxes = []
        for number, reference in enumerate(np.asarray(references[()]).reshape(-1), start=1):
            target = handle[reference] if reference else None
            if not isinstance(target, h5py.Dataset):
                raise DataError(f"{file}: the bounding boxes of image {number} are missing")
            # Stored (4, boxes): MATLAB's boxes x 4 matrix, column-major.
            array = np.asarray(target[()]).T
            if array.ndim != 2 or array.shape[1] != 4:
                raise DataError(
                    f"{file}: the bounding boxes of image {number} have shape {array.shape} "
                    "after transposition, expected (boxes, 4) = [row0, col0, row1, col1]"
                )
            boxes.append(array)
    if not boxes:
        raise DataError(f"{file}: info.boundingboxes is empty")
    if len({array.shape for array in boxes}) != 1:
        raise DataError(f"{file}: the images have different numbers of bounding boxes")
    stacked = np.stack(boxes)
    if not np.all(np.isfinite(stacked)) or not np.array_equal(stacked, np.round(stacked)):
        raise DataError(f"{file}: bounding boxes must hold whole pixel coordinates")
    return stacked.astype(np.int64)


class DndBenchmark:
    """The DND sRGB benchmark: noisy crops read box by box from the HDF5 files.

    Args:
        root: the DND folder (``info.mat``, ``images_srgb/``).
        boxes: int64 ``(images, boxes, 4)``, ``[row0, col0, row1, col1]``, 1-based inclusive
            (MATLAB's convention, as stored in ``info.mat``).
        images_folder: the ``images_srgb`` folder.

    Crops are read by slicing the HDF5 dataset, so a whole image (about 100 MB as float32)
    is never loaded unless :meth:`image` asks for it.
    """

    def __init__(self, root: Path, boxes: np.ndarray, images_folder: Path) -> None:
        self.root = root
        self.boxes = boxes
        self.images_folder = images_folder

    @property
    def num_images(self) -> int:
        """Images (50)."""
        return int(self.boxes.shape[0])

    @property
    def boxes_per_image(self) -> int:
        """Boxes per image (20)."""
        return int(self.boxes.shape[1])

    def image_file(self, image_index: int) -> Path:
        """``images_srgb/%04d.mat`` of a 1-based image index."""
        self._check_image_index(image_index)
        name = f"{image_index:04d}.mat"
        found = find_entry(self.images_folder, name)
        if found is None:
            raise DataError(
                f"DND image file {name} is not in {self.images_folder}; complete the download"
            )
        return found

    def _check_image_index(self, image_index: int) -> None:
        if not 1 <= image_index <= self.num_images:
            raise ConfigError(f"image_index must be in 1..{self.num_images}, got {image_index}")

    def _dataset(self, handle: Any, file: Path) -> Any:
        h5py = import_h5py(file)
        dataset = handle.get("InoisySRGB")
        if not isinstance(dataset, h5py.Dataset):
            raise DataError(f"{file} holds no InoisySRGB variable; is it a DND sRGB image?")
        if dataset.ndim != 3 or dataset.shape[0] != 3 or dataset.dtype.kind != "f":
            raise DataError(
                f"{file}: InoisySRGB is {dataset.dtype} stored {dataset.shape}, expected a float "
                "image stored (3, W, H), i.e. MATLAB's H x W x 3"
            )
        return dataset

    def _read_box(self, dataset: Any, file: Path, image_index: int, box_index: int) -> np.ndarray:
        row0, col0, row1, col1 = (
            int(value) for value in self.boxes[image_index - 1, box_index - 1]
        )
        width, height = dataset.shape[1], dataset.shape[2]
        if not (1 <= row0 <= row1 <= height and 1 <= col0 <= col1 <= width):
            raise DataError(
                f"box {box_index} of image {image_index} [{row0}, {col0}, {row1}, {col1}] "
                f"(1-based, inclusive) lies outside {file}'s {height} x {width} image"
            )
        # 1-based inclusive [row0, row1] is the 0-based half-open slice [row0 - 1, row1); the
        # dataset is (channel, column, row), hence the reversed slice and the transpose.
        stored = dataset[:, col0 - 1 : col1, row0 - 1 : row1]
        return np.ascontiguousarray(stored.transpose(2, 1, 0), dtype=np.float32)

    def crops(self, image_index: int) -> Iterator[DndCrop]:
        """The noisy crops of one image, boxes 1 .. 20, opening its file once."""
        file = self.image_file(image_index)
        with _open_h5(file) as handle:
            dataset = self._dataset(handle, file)
            for box_index in range(1, self.boxes_per_image + 1):
                yield DndCrop(
                    image_index, box_index, self._read_box(dataset, file, image_index, box_index)
                )

    def crop(self, image_index: int, box_index: int) -> np.ndarray:
        """One noisy crop, float32 ``(h, w, 3)`` in ``[0, 1]``; indices are 1-based."""
        if not 1 <= box_index <= self.boxes_per_image:
            raise ConfigError(f"box_index must be in 1..{self.boxes_per_image}, got {box_index}")
        file = self.image_file(image_index)
        with _open_h5(file) as handle:
            return self._read_box(self._dataset(handle, file), file, image_index, box_index)

    def image(self, image_index: int) -> np.ndarray:
        """A whole noisy image, float32 ``(H, W, 3)`` in ``[0, 1]``."""
        file = self.image_file(image_index)
        with _open_h5(file) as handle:
            dataset = self._dataset(handle, file)
            return np.ascontiguousarray(dataset[()].transpose(2, 1, 0), dtype=np.float32)

    def __len__(self) -> int:
        return self.num_images * self.boxes_per_image

    def __iter__(self) -> Iterator[DndCrop]:
        for image_index in range(1, self.num_images + 1):
            yield from self.crops(image_index)

    def tensors(self) -> Iterator[DndCrop]:
        """Like iteration, with float32 ``(3, h, w)`` tensors."""
        for image_index, box_index, noisy in self:
            yield DndCrop(image_index, box_index, _float_hwc_to_tensor(noisy))

    def __repr__(self) -> str:
        return (
            f"DndBenchmark({self.num_images} images x {self.boxes_per_image} boxes, "
            f"root={self.root})"
        )


def read_dnd(root: PathLike, *, strict: bool = True) -> DndBenchmark:
    """Open the DND sRGB benchmark: read the bounding boxes, check that every image is there.

    Args:
        root: the DND folder holding ``info.mat`` and ``images_srgb/0001.mat`` ...
        strict: require the published 50 images x 20 boxes of 512 x 512 pixels; ``False``
            accepts any numbers and box sizes.

    Returns:
        A :class:`DndBenchmark` yielding ``(image_index, box_index, noisy)`` with 1-based
        indices and float32 ``(512, 512, 3)`` crops in ``[0, 1]``.

    Raises:
        DataError: missing files, files that are not MATLAB v7.3, or a layout other than above.
    """
    folder = existing_folder(root, "DND")
    info = require_file(folder, "info.mat", "DND")
    images_folder = find_entry(folder, "images_srgb", directory=True)
    if images_folder is None:
        raise DataError(f"{folder} has no images_srgb folder; download the DND sRGB images")
    boxes = _read_dnd_boxes(info)
    images, per_image = boxes.shape[:2]
    if strict and (images, per_image) != (DND_IMAGES, DND_BOXES):
        raise DataError(
            f"{info} describes {images} images x {per_image} boxes, DND has {DND_IMAGES} x "
            f"{DND_BOXES}; pass --no-strict (strict=False in Python) for another layout"
        )
    heights = boxes[..., 2] - boxes[..., 0] + 1
    widths = boxes[..., 3] - boxes[..., 1] + 1
    if np.any(heights < 1) or np.any(widths < 1) or np.any(boxes[..., :2] < 1):
        raise DataError(
            f"{info} holds boxes that are empty or start before pixel 1; the convention is "
            "[row0, col0, row1, col1], 1-based and inclusive"
        )
    if strict and (np.any(heights != DND_CROP) or np.any(widths != DND_CROP)):
        raise DataError(
            f"{info} holds boxes that are not {DND_CROP} x {DND_CROP}; pass --no-strict "
            "(strict=False in Python) to accept other sizes"
        )
    missing = [
        f"{number:04d}.mat"
        for number in range(1, images + 1)
        if find_entry(images_folder, f"{number:04d}.mat") is None
    ]
    if missing:
        raise DataError(
            f"{images_folder} lacks {len(missing)} image files ({listing(missing)}); "
            "complete the download"
        )
    return DndBenchmark(folder, boxes, images_folder)


def _crop_array(crop: Any) -> np.ndarray:
    """A crop as a float32 ``(h, w, 3)`` array: numpy HWC as is, a torch CHW tensor transposed."""
    if isinstance(crop, torch.Tensor):
        tensor = crop.detach()
        if tensor.ndim == 4 and tensor.shape[0] == 1:
            tensor = tensor[0]
        if tensor.ndim != 3 or tensor.shape[0] != 3 or not tensor.is_floating_point():
            raise ShapeError(
                f"a crop tensor must be float (3, H, W) or (1, 3, H, W), got {tensor.dtype} "
                f"{tuple(crop.shape)}"
            )
        return tensor.to("cpu", torch.float32).permute(1, 2, 0).contiguous().numpy()
    if not isinstance(crop, np.ndarray):
        raise ShapeError(
            f"a crop must be a numpy array or a torch tensor, got {type(crop).__name__}"
        )
    if crop.ndim != 3 or crop.shape[-1] != 3 or crop.dtype.kind != "f":
        raise ShapeError(
            f"a crop must be a float (H, W, 3) array in [0, 1], got {crop.dtype} {crop.shape}"
            + ("; divide 8-bit data by 255" if crop.dtype == np.uint8 else "")
        )
    return np.ascontiguousarray(crop, dtype=np.float32)


def write_dnd_box(
    folder: PathLike,
    image_index: int,
    box_index: int,
    crop: np.ndarray | torch.Tensor,
    *,
    strict: bool = True,
) -> Path:
    """Write one denoised DND box as ``folder/%04d_%02d.mat`` with ``Idenoised_crop``.

    Args:
        folder: the submission folder (created if needed).
        image_index: 1-based image number (1 .. 50).
        box_index: 1-based box number (1 .. 20).
        crop: the denoised crop, float ``(H, W, 3)`` numpy array or float ``(3, H, W)`` /
            ``(1, 3, H, W)`` tensor, values in ``[0, 1]``; stored as float32 H x W x 3, not
            clipped or quantised (the kit's evaluation takes floats).
        strict: require 1 <= image_index <= 50, 1 <= box_index <= 20 and a 512 x 512 crop.

    Returns:
        The path written (atomically, MATLAB v5 via scipy, as the kit's ``dnd_denoise.py``).

    Raises:
        ShapeError: a crop of the wrong type, rank, size or dtype.
        ConfigError: an index out of range.
        DataError: NaN or infinite values in the crop.
    """
    limits = (DND_IMAGES, DND_BOXES) if strict else (9999, 99)
    for name, value, limit in (
        ("image_index", image_index, limits[0]),
        ("box_index", box_index, limits[1]),
    ):
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or not 1 <= value <= limit
        ):
            raise ConfigError(f"{name} must be an integer in 1..{limit}, got {value!r}")
    array = _crop_array(crop)
    if strict and array.shape[:2] != (DND_CROP, DND_CROP):
        raise ShapeError(
            f"DND crops are {DND_CROP} x {DND_CROP}, got {array.shape[0]} x {array.shape[1]} "
            f"for image {image_index} box {box_index}; pass --no-strict (strict=False in "
            "Python) for other sizes"
        )
    if not np.all(np.isfinite(array)):
        raise DataError(
            f"the crop of image {image_index} box {box_index} holds NaN or infinite values; "
            "check the model's output before writing a submission"
        )
    target = Path(folder) / f"{int(image_index):04d}_{int(box_index):02d}.mat"
    sio = import_scipy_io(target)
    with atomic_path(target) as tmp, open(tmp, "wb") as handle:
        sio.savemat(handle, {"Idenoised_crop": array})
    return target


def _read_box_file(sio: ModuleType, file: Path, crop_size: tuple[int, int] | None) -> np.ndarray:
    try:
        contents = sio.loadmat(str(file), variable_names=["Idenoised_crop"])
    except (sio.matlab.MatReadError, ValueError, OSError, NotImplementedError) as error:
        raise DataError(
            f"{file} is not a readable MATLAB v5 file ({error}); write it again"
        ) from error
    array = contents.get("Idenoised_crop")
    if not isinstance(array, np.ndarray):
        raise DataError(f"{file} holds no Idenoised_crop variable; write it with write_dnd_box")
    if array.ndim != 3 or array.shape[-1] != 3 or array.dtype.kind != "f":
        raise DataError(
            f"{file}: Idenoised_crop is {array.dtype} {array.shape}, expected float32 (H, W, 3)"
        )
    if crop_size is not None and array.shape[:2] != tuple(crop_size):
        raise DataError(
            f"{file}: Idenoised_crop is {array.shape[0]} x {array.shape[1]}, the boxes are "
            f"{crop_size[0]} x {crop_size[1]}"
        )
    return array.astype(np.float32, copy=False)


def bundle_dnd_submission(
    folder: PathLike,
    out_folder: PathLike | None = None,
    *,
    images: int = DND_IMAGES,
    boxes: int = DND_BOXES,
    crop_size: tuple[int, int] | None = (DND_CROP, DND_CROP),
) -> list[Path]:
    """Bundle the per-box files into one ``%04d.mat`` per image, as the DND kit does.

    Each bundled file holds ``Idenoised`` (a 1 x ``boxes`` cell of the crops, box order),
    ``israw`` (false) and ``eval_version`` (``"1.0"``), written by ``scipy.io.savemat`` like
    the kit's ``bundle_submissions_srgb``. Nothing is written unless every box is there.

    Args:
        folder: the folder of ``%04d_%02d.mat`` files (:func:`write_dnd_box`).
        out_folder: where to write; default ``folder/bundled`` (the kit's choice).
        images: number of images (50).
        boxes: boxes per image (20).
        crop_size: the required crop height and width, or ``None`` to accept any.

    Returns:
        The bundled files, image 1 first.

    Raises:
        DataError: missing box files (all of them are listed, per image) or a box file with
            the wrong contents.
    """
    source = existing_folder(folder, "DND submission")
    target = source / "bundled" if out_folder is None else Path(out_folder)
    if target.resolve() == source.resolve():
        raise ConfigError(f"out_folder must differ from the box folder {source}; use a subfolder")
    missing: list[str] = []
    for image_index in range(1, images + 1):
        absent = [
            box_index
            for box_index in range(1, boxes + 1)
            if not (source / f"{image_index:04d}_{box_index:02d}.mat").is_file()
        ]
        if absent:
            missing.append(f"image {image_index}: boxes {', '.join(map(str, absent))}")
    if missing:
        raise DataError(
            f"cannot bundle {source}: {len(missing)} images miss box files "
            f"({'; '.join(missing[:SHOWN])}{' ...' if len(missing) > SHOWN else ''}); "
            "denoise and write those boxes first"
        )
    sio = import_scipy_io(source)
    written = []
    for image_index in range(1, images + 1):
        cells = np.empty((boxes,), dtype=object)
        for box_index in range(1, boxes + 1):
            file = source / f"{image_index:04d}_{box_index:02d}.mat"
            cells[box_index - 1] = _read_box_file(sio, file, crop_size)
        out = target / f"{image_index:04d}.mat"
        with atomic_path(out) as tmp, open(tmp, "wb") as handle:
            sio.savemat(handle, {"Idenoised": cells, "israw": False, "eval_version": "1.0"})
        written.append(out)
    return written
