"""Readers and submission writers for the SIDD and DND benchmark files, in their published layouts.

**SIDD** (Abdelhamed, Lin, Brown, CVPR 2018):

* *SIDD Medium sRGB* (training): ``SIDD_Medium_Srgb/Data/<scene>/<id>_NOISY_SRGB_010.PNG``,
  ``<id>_GT_SRGB_010.PNG`` and the same with ``_011``: 160 scene folders, 320 noisy images
  (:func:`sidd_medium_files`).
* *Validation*: ``ValidationNoisyBlocksSrgb.mat`` and ``ValidationGtBlocksSrgb.mat``, MATLAB v5,
  one variable each named like the file, ``(40, 32, 256, 256, 3)`` uint8: 40 images x 32
  blocks (:func:`read_sidd_validation`).
* *Benchmark*: ``BenchmarkNoisyBlocksSrgb.mat``, same layout, no ground truth
  (:func:`read_sidd_benchmark`). The submission is ``SubmitSrgb.mat`` holding
  ``DenoisedBlocksSrgb`` (a 40 x 32 cell array of uint8 256 x 256 x 3 blocks), ``TimeMPSrgb``
  (seconds per megapixel, a double) and ``OptionalData`` (a struct of strings: the official kit's
  demo fills ``MethodName``, ``Authors``, ``PaperTitle``, ``Venue`` and ``MachineSpecs``)
  (:func:`write_sidd_submission`). The benchmark now runs as the Kaggle competition
  ``sidd-benchmark-srgb-psnr``, whose circulating submission script uploads a CSV instead
  (:func:`write_sidd_submission_csv`).

**DND** (Plötz and Roth, CVPR 2017), read and written as the official Python kit does
(``dnd_denoise.py``, ``bundle_submissions.py``, also shipped in AP-BSN's
``src/util/dnd_submission``):

* ``info.mat`` (MATLAB v7.3 = HDF5): ``info/boundingboxes`` holds one object reference per image;
  each refers to a stored ``(4, 20)`` array, i.e. MATLAB's 20 x 4 ``[row0, col0, row1, col1]``,
  1-based and inclusive. ``images_srgb/%04d.mat`` (v7.3) holds ``InoisySRGB``, float in
  ``[0, 1]``, stored ``(3, W, H)`` (MATLAB's H x W x 3 transposed) (:func:`read_dnd`).
* Per box ``%04d_%02d.mat`` with ``Idenoised_crop`` (float32 H x W x 3) (:func:`write_dnd_box`),
  then per image ``bundled/%04d.mat`` with ``Idenoised`` (a 1 x 20 cell: the kit builds a
  ``(20,)`` object array, which scipy stores as a 1 x 20 cell, the shape the MATLAB kit's
  ``cell(1, 20)`` has too), ``israw`` (false) and ``eval_version`` (``"1.0"``)
  (:func:`bundle_dnd_submission`). Upload the 50 bundled files.

Decisions where the kits are silent:

* ``SubmitSrgb.mat`` is written as MATLAB **v5** by default (``mat_format="v5"``, scipy). The
  official MATLAB kit saves ``-v7.3``, but MATLAB's ``load`` reads both formats alike, v5 holds
  variables up to 2 GB (the blocks are 251 MB), and the Python submission scripts of public
  denoising repositories write the file with ``scipy.io.savemat`` (v5), most of them with
  ``DenoisedBlocksSrgb`` only. That the former server accepted such files is inferred from
  that practice, not confirmed by the SIDD authors. ``mat_format="v7.3"`` writes the kit's own
  format (HDF5 with MATLAB's 512-byte header, cell arrays as references).
* Blocks are not compressed by default (``compress=False``): scipy compresses a v5 variable
  as one whole in memory, which doubles the writer's peak memory (measured: 1.4 GB instead of
  0.7 GB for the 240 MB of blocks) for a file that uploads once. ``compress=True`` is there
  (zlib for v5, per-block gzip for v7.3, which costs no extra memory).
* ``TimeMPSrgb`` follows the kit: total seconds x 1024 x 1024 / number of pixels
  (:func:`seconds_per_megapixel`), so a "megapixel" is 2**20 pixels.
* :meth:`SiddBlocks.spread` takes the centre block of ``k`` equal runs of the image-major block
  order, so any subset of at least 40 blocks touches every image, and a smaller one is spread
  over all of them (never the first image only, as a plain ``[:k]`` would be).

scipy (v5 files) and h5py (v7.3 files) are optional dependencies (``pip install amsnet[mat]``).

Example:
    >>> from amsnet.data.benchmarks import read_sidd_validation  # doctest: +SKIP
    >>> blocks = read_sidd_validation("SIDD/", subset=128)        # doctest: +SKIP
    >>> for index, noisy, clean in blocks:                       # doctest: +SKIP
    ...     image, block = blocks.position(index)                # uint8 (256, 256, 3) views
"""

from __future__ import annotations

import base64
import csv
import math
import re
import time
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Literal, NamedTuple, overload

import numpy as np
import torch

from amsnet.atomic import atomic_path
from amsnet.data.io import from_uint8
from amsnet.errors import ConfigError, DataError, ShapeError

PathLike = str | Path

SIDD_BLOCKS_SHAPE = (40, 32, 256, 256, 3)
"""Shape of every published SIDD block file: images, blocks per image, height, width, RGB."""

SIDD_MEDIUM_SCENES = 160
"""Scene folders of SIDD Medium sRGB (two noisy/ground-truth pairs each)."""

# The DND sRGB benchmark: 50 images, 20 boxes each, every box 512 x 512 pixels.
DND_IMAGES = 50
DND_BOXES = 20
DND_CROP = 512

SIDD_VALIDATION_NOISY = "ValidationNoisyBlocksSrgb"
SIDD_VALIDATION_CLEAN = "ValidationGtBlocksSrgb"
SIDD_BENCHMARK_NOISY = "BenchmarkNoisyBlocksSrgb"

_MEDIUM_FILE = re.compile(r"^(?:\d+_)?(NOISY|GT)_SRGB_(\d{3})\.png$", re.IGNORECASE)
_MEDIUM_NUMBERS = ("010", "011")
_MATLAB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_MEGAPIXEL = 1024 * 1024
_SHOWN = 10  # how many missing names an error message lists before "... and N more"


# --------------------------------------------------------------------------------------------
# helpers


def _scipy_io(file: Path) -> ModuleType:
    try:
        import scipy.io
    except ImportError as error:  # pragma: no cover - scipy is installed in every test setup
        raise DataError(
            f"reading or writing {file} needs scipy; install it with pip install 'amsnet[mat]'"
        ) from error
    return scipy.io


def _h5py(file: Path) -> ModuleType:
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is installed in every test setup
        raise DataError(
            f"reading or writing {file} (MATLAB v7.3) needs h5py; "
            "install it with pip install 'amsnet[mat]'"
        ) from error
    return h5py


def _listing(names: Sequence[str]) -> str:
    shown = ", ".join(names[:_SHOWN])
    if len(names) > _SHOWN:
        shown += f" ... and {len(names) - _SHOWN} more"
    return shown or "nothing"


def _folder(root: PathLike, what: str) -> Path:
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"{what} folder {folder} does not exist or is not a folder; check the path")
    return folder


def _find_entry(folder: Path, name: str, *, directory: bool = False) -> Path | None:
    """``folder / name``, matching the name without regard to case (copies differ in case)."""
    exact = folder / name
    if exact.is_dir() if directory else exact.is_file():
        return exact
    matches = sorted(
        entry
        for entry in folder.iterdir()
        if entry.name.lower() == name.lower() and (entry.is_dir() if directory else entry.is_file())
    )
    if len(matches) > 1:
        raise DataError(
            f"{folder} holds several files named {name} in different cases "
            f"({_listing([m.name for m in matches])}); keep one"
        )
    return matches[0] if matches else None


def _require_file(folder: Path, name: str, what: str) -> Path:
    found = _find_entry(folder, name)
    if found is None:
        present = sorted(entry.name for entry in folder.iterdir() if entry.suffix.lower() == ".mat")
        raise DataError(
            f"{what} file {name} is not in {folder} (found .mat files: {_listing(present)}); "
            "download it from the benchmark's website or pass the folder that holds it"
        )
    return found


def _float_hwc_to_tensor(crop: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(crop.transpose(2, 0, 1), dtype=np.float32))


# --------------------------------------------------------------------------------------------
# SIDD Medium


@overload
def sidd_medium_files(
    root: PathLike, *, noisy_only: Literal[True] = ..., strict: bool = ...
) -> list[Path]: ...
@overload
def sidd_medium_files(
    root: PathLike, *, noisy_only: Literal[False], strict: bool = ...
) -> list[tuple[Path, Path]]: ...
@overload
def sidd_medium_files(
    root: PathLike, *, noisy_only: bool, strict: bool = ...
) -> list[Path] | list[tuple[Path, Path]]: ...


def sidd_medium_files(
    root: PathLike, *, noisy_only: bool = True, strict: bool = True
) -> list[Path] | list[tuple[Path, Path]]:
    """The image files of SIDD Medium sRGB, in scene order, ``_010`` before ``_011``.

    Args:
        root: the ``SIDD_Medium_Srgb`` folder (holding ``Data/``) or its ``Data`` folder.
        noisy_only: ``True`` (self-supervised training) returns the noisy paths only;
            ``False`` (supervised reference) returns ``(noisy, ground_truth)`` pairs.
        strict: require the published layout: 160 scene folders, each with ``NOISY_SRGB_010``
            and ``_011`` (and their ``GT_SRGB`` files when pairs are asked for). ``False``
            accepts a partial copy: any number of scenes, each with at least one noisy image.

    File names may carry the scene-instance prefix (``0001_NOISY_SRGB_010.PNG``, as published)
    or not, in any letter case. Hidden folders (``.*``, ``__MACOSX``) are skipped.

    Returns:
        ``list[Path]`` of noisy PNGs, or ``list[tuple[Path, Path]]`` of (noisy, ground truth).

    Raises:
        DataError: missing folder, or a layout that differs from the above (the message says
            what was expected and what was found).
    """
    folder = _folder(root, "SIDD Medium")
    data = _find_entry(folder, "Data", directory=True) or folder
    scenes = sorted(
        entry
        for entry in data.iterdir()
        if entry.is_dir() and not entry.name.startswith((".", "__"))
    )
    if not scenes:
        raise DataError(
            f"{data} holds no scene folders; expected SIDD_Medium_Srgb/Data/<scene>/ folders "
            "such as 0001_001_S6_00100_00060_3200_L"
        )
    if strict and len(scenes) != SIDD_MEDIUM_SCENES:
        raise DataError(
            f"{data} holds {len(scenes)} scene folders, SIDD Medium sRGB has "
            f"{SIDD_MEDIUM_SCENES}; complete the download, or pass strict=False to use a "
            "partial copy"
        )
    noisy_paths: list[Path] = []
    pairs: list[tuple[Path, Path]] = []
    for scene in scenes:
        files: dict[tuple[str, str], Path] = {}
        for entry in sorted(scene.iterdir()):
            match = _MEDIUM_FILE.match(entry.name)
            if match is None or not entry.is_file():
                continue
            key = (match.group(1).upper(), match.group(2))
            if key in files:
                raise DataError(
                    f"scene {scene} holds two {key[0]}_SRGB_{key[1]} files "
                    f"({files[key].name}, {entry.name}); keep one"
                )
            files[key] = entry
        numbers = sorted(number for kind, number in files if kind == "NOISY")
        found = _listing(sorted(path.name for path in files.values()))
        if strict:
            kinds = ("NOISY",) if noisy_only else ("NOISY", "GT")
            missing = [
                f"{kind}_SRGB_{number}.PNG"
                for kind in kinds
                for number in _MEDIUM_NUMBERS
                if (kind, number) not in files
            ]
            if missing:
                raise DataError(
                    f"scene {scene} lacks {', '.join(missing)} (found: {found}); every SIDD "
                    "Medium scene has NOISY_SRGB_010/011 and GT_SRGB_010/011, or pass "
                    "strict=False"
                )
        if not numbers:
            raise DataError(
                f"scene {scene} holds no *_NOISY_SRGB_<nnn>.PNG image (found: {found}); "
                "remove the folder or complete the download"
            )
        for number in numbers:
            noisy = files[("NOISY", number)]
            if noisy_only:
                noisy_paths.append(noisy)
                continue
            clean = files.get(("GT", number))
            if clean is None:
                raise DataError(
                    f"scene {scene} has {noisy.name} but no GT_SRGB_{number}.PNG (found: {found});"
                    " complete the download, or use noisy_only=True"
                )
            pairs.append((noisy, clean))
    return noisy_paths if noisy_only else pairs


# --------------------------------------------------------------------------------------------
# SIDD validation and benchmark blocks


def spread_indices(total: int, count: int) -> np.ndarray:
    """``count`` indices spread evenly over ``range(total)``: the centres of equal runs.

    Args:
        total: number of items (1280 SIDD blocks).
        count: how many to take, ``1 <= count <= total``.

    Returns:
        int64 array of shape ``(count,)``, strictly increasing, ``floor((i + 0.5) * total /
        count)`` for ``i = 0 .. count - 1``.

    Example:
        >>> spread_indices(1280, 40)[:3].tolist()
        [16, 48, 80]
    """
    if isinstance(count, bool) or not isinstance(count, int | np.integer):
        raise ConfigError(f"subset must be an integer between 1 and {total}, got {count!r}")
    count = int(count)
    if not 1 <= count <= total:
        raise ConfigError(f"subset must be an integer between 1 and {total}, got {count!r}")
    steps = np.arange(count, dtype=np.int64)
    # Integer arithmetic: exact for any size, no floating-point rounding at run boundaries.
    return (2 * steps + 1) * total // (2 * count)


class SiddBlock(NamedTuple):
    """One SIDD block.

    Attributes:
        index: position in the file's image-major order, ``image * 32 + block``, 0-based.
        noisy: uint8 ``(256, 256, 3)`` RGB view into the file array, or a float32
            ``(3, 256, 256)`` tensor in ``[0, 1]`` from :meth:`SiddBlocks.tensors`.
        clean: the ground truth in the same form, or ``None`` for benchmark blocks.
    """

    index: int
    noisy: Any
    clean: Any


class SiddBlocks:
    """The blocks of a SIDD validation or benchmark file, or an evenly spread subset of them.

    Holds the file arrays once (251 MB each for the published files) and yields views into
    them; nothing is copied except by :meth:`tensors`, one block at a time.

    Args:
        noisy: uint8 array ``(images, blocks, H, W, 3)``.
        clean: the ground truth of the same shape, or ``None``.
        indices: the selected flat indices (image-major), or ``None`` for all blocks.
        source: the noisy file, for messages.
    """

    def __init__(
        self,
        noisy: np.ndarray,
        clean: np.ndarray | None = None,
        *,
        indices: Sequence[int] | np.ndarray | None = None,
        source: Path | None = None,
    ) -> None:
        if noisy.ndim != 5 or noisy.shape[-1] != 3 or noisy.dtype != np.uint8:
            raise ShapeError(
                f"SIDD blocks must be a uint8 array (images, blocks, H, W, 3), got "
                f"{noisy.dtype} {noisy.shape}"
            )
        if clean is not None and (clean.shape != noisy.shape or clean.dtype != np.uint8):
            raise ShapeError(
                f"ground-truth blocks {clean.dtype} {clean.shape} do not match the noisy "
                f"blocks {noisy.dtype} {noisy.shape}"
            )
        self.noisy = noisy
        self.clean = clean
        self.source = source
        total = noisy.shape[0] * noisy.shape[1]
        selected = np.arange(total) if indices is None else np.asarray(indices, dtype=np.int64)
        if selected.ndim != 1 or (
            selected.size and (selected.min() < 0 or selected.max() >= total)
        ):
            raise ConfigError(f"block indices must be a 1-D selection of range({total})")
        self.indices = selected

    @property
    def num_images(self) -> int:
        """Images in the file (40)."""
        return int(self.noisy.shape[0])

    @property
    def blocks_per_image(self) -> int:
        """Blocks per image (32)."""
        return int(self.noisy.shape[1])

    def position(self, index: int) -> tuple[int, int]:
        """``(image, block)``, both 0-based, of a flat block index."""
        image, block = divmod(int(index), self.blocks_per_image)
        return image, block

    def spread(self, count: int) -> SiddBlocks:
        """``count`` blocks evenly spread over all images (see :func:`spread_indices`)."""
        chosen = self.indices[spread_indices(len(self.indices), count)]
        return SiddBlocks(self.noisy, self.clean, indices=chosen, source=self.source)

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, item: int) -> SiddBlock:
        index = int(self.indices[item])
        image, block = self.position(index)
        clean = None if self.clean is None else self.clean[image, block]
        return SiddBlock(index, self.noisy[image, block], clean)

    def __iter__(self) -> Iterator[SiddBlock]:
        for item in range(len(self)):
            yield self[item]

    def tensors(self) -> Iterator[SiddBlock]:
        """Like iteration, with float32 ``(3, H, W)`` tensors in ``[0, 1]`` (value / 255).

        Each tensor is a copy of one block (:func:`amsnet.data.io.from_uint8`).
        """
        for index, noisy, clean in self:
            yield SiddBlock(
                index,
                from_uint8(noisy),
                None if clean is None else from_uint8(clean),
            )

    def __repr__(self) -> str:
        kind = "pairs" if self.clean is not None else "noisy blocks"
        return f"SiddBlocks({len(self)} {kind} of {self.noisy.shape}, source={self.source})"


def _load_sidd_array(file: Path, name: str, strict: bool) -> np.ndarray:
    sio = _scipy_io(file)
    try:
        variables = sio.whosmat(str(file))
    except NotImplementedError as error:  # scipy's answer to an HDF5 (v7.3) file
        raise DataError(
            f"{file} is a MATLAB v7.3 (HDF5) file; the published SIDD block files are MATLAB "
            "v5: download the original file again"
        ) from error
    except (sio.matlab.MatReadError, ValueError, OSError, TypeError) as error:
        raise DataError(
            f"{file} is not a readable MATLAB file ({error}); download it again"
        ) from error
    names = {variable[0].lower(): variable for variable in variables}
    if name.lower() not in names:
        raise DataError(
            f"{file} holds no variable {name} (found: {_listing([v[0] for v in variables])}); "
            "is it the right SIDD file?"
        )
    stored, shape, matlab_class = names[name.lower()]
    shape = tuple(int(size) for size in shape)
    expected = "uint8 " + (
        str(SIDD_BLOCKS_SHAPE) if strict else "(images, blocks, height, width, 3)"
    )
    well_formed = len(shape) == 5 and shape[-1] == 3 and all(size > 0 for size in shape)
    if matlab_class != "uint8" or not well_formed or (strict and shape != SIDD_BLOCKS_SHAPE):
        raise DataError(
            f"{file}: variable {stored} is {matlab_class} {shape}, expected {expected}; "
            + (
                "pass strict=False for a file of another size"
                if strict and well_formed and matlab_class == "uint8"
                else "download the original file again"
            )
        )
    try:
        array = sio.loadmat(str(file), variable_names=[stored])[stored]
    except (sio.matlab.MatReadError, ValueError, OSError, TypeError) as error:
        raise DataError(f"{file} could not be read ({error}); download it again") from error
    if array.dtype != np.uint8 or array.shape != shape:
        raise DataError(f"{file}: {stored} read as {array.dtype} {array.shape}, not uint8 {shape}")
    return array


def read_sidd_validation(
    root: PathLike, *, subset: int | None = None, strict: bool = True
) -> SiddBlocks:
    """The SIDD sRGB validation blocks: noisy and ground truth, 40 images x 32 blocks.

    Args:
        root: the folder holding ``ValidationNoisyBlocksSrgb.mat`` and
            ``ValidationGtBlocksSrgb.mat`` (file names in any letter case).
        subset: ``None`` for all 1280 blocks, or a number of blocks spread evenly over all
            images (see :meth:`SiddBlocks.spread`), e.g. 128 for a quick check.
        strict: require the published shape ``(40, 32, 256, 256, 3)``; ``False`` accepts any
            ``(images, blocks, H, W, 3)`` uint8 pair of equal shapes.

    Returns:
        :class:`SiddBlocks` yielding ``(index, noisy, clean)`` uint8 ``(256, 256, 3)`` views.

    Raises:
        DataError: a missing file or variable, or a shape or type other than expected (the
            message names the file).
    """
    folder = _folder(root, "SIDD validation")
    noisy_file = _require_file(folder, f"{SIDD_VALIDATION_NOISY}.mat", "SIDD validation")
    clean_file = _require_file(folder, f"{SIDD_VALIDATION_CLEAN}.mat", "SIDD validation")
    noisy = _load_sidd_array(noisy_file, SIDD_VALIDATION_NOISY, strict)
    clean = _load_sidd_array(clean_file, SIDD_VALIDATION_CLEAN, strict)
    if clean.shape != noisy.shape:
        raise DataError(
            f"{clean_file} holds {clean.shape} blocks but {noisy_file} holds {noisy.shape}; "
            "the two files must come from the same release"
        )
    blocks = SiddBlocks(noisy, clean, source=noisy_file)
    return blocks if subset is None else blocks.spread(subset)


def read_sidd_benchmark(root: PathLike, *, strict: bool = True) -> SiddBlocks:
    """The SIDD sRGB benchmark blocks (no ground truth), 40 images x 32 blocks.

    Args:
        root: the folder holding ``BenchmarkNoisyBlocksSrgb.mat`` (any letter case).
        strict: require the published shape ``(40, 32, 256, 256, 3)``.

    Returns:
        :class:`SiddBlocks` yielding ``(index, noisy, None)``.

    Raises:
        DataError: a missing file or variable, or a shape or type other than expected.
    """
    folder = _folder(root, "SIDD benchmark")
    file = _require_file(folder, f"{SIDD_BENCHMARK_NOISY}.mat", "SIDD benchmark")
    return SiddBlocks(_load_sidd_array(file, SIDD_BENCHMARK_NOISY, strict), source=file)


# --------------------------------------------------------------------------------------------
# SIDD submission


def seconds_per_megapixel(seconds: float, pixels: int) -> float:
    """The kit's ``TimeMPSrgb``: ``seconds * 1024 * 1024 / pixels``.

    Args:
        seconds: total denoising time of all blocks.
        pixels: pixels denoised (1280 x 256 x 256 for the benchmark).

    Example:
        >>> seconds_per_megapixel(80.0, 1280 * 256 * 256)
        1.0
    """
    if pixels <= 0:
        raise ConfigError(f"pixels must be positive, got {pixels}")
    return float(seconds) * _MEGAPIXEL / pixels


def _submission_blocks(blocks: Any, strict: bool) -> np.ndarray:
    """Check the denoised blocks and return them as an ``(images, blocks)`` object array.

    The object array holds views of the caller's arrays (no copy of the 251 MB).
    """
    expected = SIDD_BLOCKS_SHAPE if strict else None
    hint = "quantise float output in [0, 1] with np.round(np.clip(x, 0, 1) * 255).astype(np.uint8)"
    if isinstance(blocks, np.ndarray) and blocks.dtype == object:
        if blocks.ndim != 2:
            raise ShapeError(
                f"denoised blocks as an object array must have shape (images, blocks), got "
                f"{blocks.shape}"
            )
        cells = blocks
    elif isinstance(blocks, np.ndarray):
        if blocks.ndim != 5 or blocks.shape[-1] != 3:
            raise ShapeError(
                f"denoised blocks must be an array (images, blocks, H, W, 3), got {blocks.shape}"
            )
        cells = np.empty(blocks.shape[:2], dtype=object)
        for image in range(blocks.shape[0]):
            for block in range(blocks.shape[1]):
                cells[image, block] = blocks[image, block]
    else:
        raise ShapeError(
            "denoised blocks must be a numpy array (images, blocks, H, W, 3) or an object "
            f"array (images, blocks) of (H, W, 3) arrays, got {type(blocks).__name__}"
        )
    if expected is not None and cells.shape != expected[:2]:
        raise ShapeError(
            f"the SIDD benchmark needs {expected[0]} x {expected[1]} blocks, got "
            f"{cells.shape[0]} x {cells.shape[1]}; pass strict=False for another size"
        )
    first_shape: tuple[int, ...] | None = None
    for (image, block), cell in np.ndenumerate(cells):
        where = f"block (image {image}, block {block})"
        if not isinstance(cell, np.ndarray):
            raise ShapeError(f"{where} is a {type(cell).__name__}, not a numpy array")
        if cell.dtype != np.uint8:
            raise ShapeError(f"{where} has dtype {cell.dtype}, the benchmark needs uint8; {hint}")
        if cell.ndim != 3 or cell.shape[-1] != 3:
            raise ShapeError(f"{where} has shape {cell.shape}, expected (H, W, 3)")
        if expected is not None and cell.shape != expected[2:]:
            raise ShapeError(
                f"{where} has shape {cell.shape}, the benchmark blocks are {expected[2:]}"
            )
        first_shape = first_shape or cell.shape
        if cell.shape != first_shape:
            raise ShapeError(f"{where} has shape {cell.shape}, the others {first_shape}")
    return cells


def _optional_data(optional_data: Mapping[str, Any] | None) -> dict[str, str | float]:
    if optional_data is None:
        from amsnet import __version__

        return {"Software": f"amsnet {__version__}"}
    if not optional_data:
        raise ConfigError(
            "optional_data needs at least one field, e.g. {'MethodName': ...}, or None"
        )
    fields: dict[str, str | float] = {}
    for key, value in optional_data.items():
        if not isinstance(key, str) or _MATLAB_NAME.match(key) is None:
            raise ConfigError(
                f"OptionalData field {key!r} is not a MATLAB field name (a letter, then up to 62 "
                "letters, digits or underscores), e.g. MethodName"
            )
        if isinstance(value, str) and value:
            fields[key] = value
        elif isinstance(value, int | float) and not isinstance(value, bool):
            fields[key] = float(value)
        else:
            raise ConfigError(
                f"OptionalData field {key} must be a non-empty string or a number, got {value!r}"
            )
    return fields


def write_sidd_submission(
    path: PathLike,
    blocks: np.ndarray,
    time_per_megapixel: float,
    *,
    optional_data: Mapping[str, Any] | None = None,
    mat_format: Literal["v5", "v7.3"] = "v5",
    compress: bool = False,
    strict: bool = True,
) -> Path:
    """Write ``SubmitSrgb.mat`` for the SIDD sRGB benchmark, atomically.

    The file holds ``DenoisedBlocksSrgb`` (an images x blocks cell array of uint8 H x W x 3
    blocks, in the order of ``BenchmarkNoisyBlocksSrgb``), ``TimeMPSrgb`` (a double) and
    ``OptionalData`` (a struct), as the official kit's ``SIDD_Denoise.m`` saves them.

    Args:
        path: the file to write, normally ``.../SubmitSrgb.mat``.
        blocks: uint8 array ``(40, 32, 256, 256, 3)``, or an object array ``(40, 32)`` of
            uint8 ``(256, 256, 3)`` arrays. Not copied.
        time_per_megapixel: seconds per 2**20 pixels (:func:`seconds_per_megapixel`).
        optional_data: struct fields, strings or numbers, e.g. ``{"MethodName": "AMSNet-P-E",
            "Authors": ..., "PaperTitle": ..., "Venue": ..., "MachineSpecs": ...}``.
            ``None`` writes ``{"Software": "amsnet <version>"}``.
        mat_format: ``"v5"`` (scipy; the default, see the module notes) or ``"v7.3"`` (HDF5,
            as the MATLAB kit's ``save(..., '-v7.3')``).
        compress: compress the blocks (zlib for v5, gzip for v7.3; see the module notes).
        strict: require the published 40 x 32 blocks of 256 x 256 x 3.

    Returns:
        The path written.

    Raises:
        ShapeError: wrong block count, shape or dtype (the message says which block).
        ConfigError: a bad time, format or ``optional_data`` entry.
    """
    if mat_format not in ("v5", "v7.3"):
        raise ConfigError(f"mat_format must be 'v5' or 'v7.3', got {mat_format!r}")
    seconds = float(time_per_megapixel)
    if not math.isfinite(seconds) or seconds < 0:
        raise ConfigError(f"time_per_megapixel must be a finite number >= 0, got {seconds}")
    cells = _submission_blocks(blocks, strict)
    fields = _optional_data(optional_data)
    target = Path(path)
    with atomic_path(target) as tmp:
        if mat_format == "v5":
            sio = _scipy_io(target)
            with open(tmp, "wb") as handle:
                sio.savemat(
                    handle,
                    {
                        "DenoisedBlocksSrgb": cells,
                        "TimeMPSrgb": seconds,
                        "OptionalData": fields,
                    },
                    do_compression=compress,
                    long_field_names=True,
                )
        else:
            _write_mat73_submission(tmp, target, cells, seconds, fields, compress)
    return target


def _matlab_class(dataset: Any, name: str) -> None:
    # MATLAB reads the class of every v7.3 variable from this fixed-length ASCII attribute.
    dataset.attrs["MATLAB_class"] = np.bytes_(name)


def _write_mat73_submission(
    tmp: Path,
    target: Path,
    cells: np.ndarray,
    seconds: float,
    fields: Mapping[str, str | float],
    compress: bool,
) -> None:
    h5py = _h5py(target)
    gzip = {"compression": "gzip", "compression_opts": 4} if compress else {}
    with h5py.File(tmp, "w", userblock_size=512) as file:
        references = file.create_group("#refs#")
        # MATLAB stores arrays column-major, so HDF5 sees every shape reversed: the 40 x 32
        # cell is a (32, 40) dataset and a 256 x 256 x 3 block a (3, 256, 256) one.
        cell = file.create_dataset(
            "DenoisedBlocksSrgb", shape=cells.shape[::-1], dtype=h5py.ref_dtype
        )
        for (image, block), array in np.ndenumerate(cells):
            stored = references.create_dataset(
                f"b{image:02d}_{block:02d}", data=np.ascontiguousarray(array.T), **gzip
            )
            _matlab_class(stored, "uint8")
            cell[block, image] = stored.ref
        _matlab_class(cell, "cell")
        _matlab_class(file.create_dataset("TimeMPSrgb", data=np.full((1, 1), seconds)), "double")
        struct = file.create_group("OptionalData")
        _matlab_class(struct, "struct")
        names = np.empty(len(fields), dtype=object)
        for number, (key, value) in enumerate(fields.items()):
            names[number] = np.frombuffer(key.encode("ascii"), dtype="S1")
            if isinstance(value, str):
                # A 1 x N MATLAB char array: UTF-16 code units, stored (N, 1).
                codes = np.frombuffer(value.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
                field = struct.create_dataset(key, data=codes)
                _matlab_class(field, "char")
                field.attrs["MATLAB_int_decode"] = np.int32(2)
            else:
                _matlab_class(struct.create_dataset(key, data=np.full((1, 1), value)), "double")
        struct.attrs.create("MATLAB_fields", names, dtype=h5py.vlen_dtype(np.dtype("S1")))
    _write_mat73_header(tmp)


def _write_mat73_header(file: Path) -> None:
    """MATLAB's 128-byte text header at the start of the HDF5 user block."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 ."
    header = text.encode("ascii").ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM"
    with open(file, "r+b") as handle:
        handle.write(header)


def write_sidd_submission_csv(path: PathLike, blocks: np.ndarray, *, strict: bool = True) -> Path:
    """Write the CSV of the Kaggle SIDD benchmark (``sidd-benchmark-srgb-psnr``), atomically.

    Columns ``ID`` (0 .. 1279, image-major: ``image * 32 + block``) and ``BLOCK`` (base64 of
    the block's uint8 bytes in C order, height x width x RGB), as the submission script that
    circulates with the competition writes them (``pandas.DataFrame.to_csv(index=False)``).

    Args:
        path: the file to write, e.g. ``SubmitSrgb.csv``.
        blocks: as for :func:`write_sidd_submission`.
        strict: require the published 40 x 32 blocks of 256 x 256 x 3.

    Returns:
        The path written.
    """
    cells = _submission_blocks(blocks, strict)
    target = Path(path)
    with atomic_path(target) as tmp, open(tmp, "w", newline="", encoding="ascii") as handle:
        writer = csv.writer(handle, lineterminator="\n")
        writer.writerow(["ID", "BLOCK"])
        for index, array in enumerate(cells.reshape(-1)):
            encoded = base64.b64encode(np.ascontiguousarray(array).tobytes()).decode("ascii")
            writer.writerow([index, encoded])
    return target


# --------------------------------------------------------------------------------------------
# DND


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


def _open_h5(h5py: ModuleType, file: Path) -> Any:
    try:
        return h5py.File(file, "r")
    except OSError as error:
        raise DataError(
            f"{file} is not an HDF5 (MATLAB v7.3) file ({error}); the DND files are v7.3: "
            "download them again"
        ) from error


def _read_dnd_boxes(file: Path) -> np.ndarray:
    h5py = _h5py(file)
    with _open_h5(h5py, file) as handle:
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
        found = _find_entry(self.images_folder, name)
        if found is None:
            raise DataError(
                f"DND image file {name} is not in {self.images_folder}; complete the download"
            )
        return found

    def _check_image_index(self, image_index: int) -> None:
        if not 1 <= image_index <= self.num_images:
            raise ConfigError(f"image_index must be in 1..{self.num_images}, got {image_index}")

    def _dataset(self, handle: Any, file: Path) -> Any:
        h5py = _h5py(file)
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
        with _open_h5(_h5py(file), file) as handle:
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
        with _open_h5(_h5py(file), file) as handle:
            return self._read_box(self._dataset(handle, file), file, image_index, box_index)

    def image(self, image_index: int) -> np.ndarray:
        """A whole noisy image, float32 ``(H, W, 3)`` in ``[0, 1]``."""
        file = self.image_file(image_index)
        with _open_h5(_h5py(file), file) as handle:
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
    folder = _folder(root, "DND")
    info = _require_file(folder, "info.mat", "DND")
    images_folder = _find_entry(folder, "images_srgb", directory=True)
    if images_folder is None:
        raise DataError(f"{folder} has no images_srgb folder; download the DND sRGB images")
    boxes = _read_dnd_boxes(info)
    images, per_image = boxes.shape[:2]
    if strict and (images, per_image) != (DND_IMAGES, DND_BOXES):
        raise DataError(
            f"{info} describes {images} images x {per_image} boxes, DND has {DND_IMAGES} x "
            f"{DND_BOXES}; pass strict=False for another layout"
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
            f"{info} holds boxes that are not {DND_CROP} x {DND_CROP}; pass strict=False to "
            "accept other sizes"
        )
    missing = [
        f"{number:04d}.mat"
        for number in range(1, images + 1)
        if _find_entry(images_folder, f"{number:04d}.mat") is None
    ]
    if missing:
        raise DataError(
            f"{images_folder} lacks {len(missing)} image files ({_listing(missing)}); "
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
            f"for image {image_index} box {box_index}; pass strict=False for other sizes"
        )
    if not np.all(np.isfinite(array)):
        raise DataError(
            f"the crop of image {image_index} box {box_index} holds NaN or infinite values; "
            "check the model's output before writing a submission"
        )
    target = Path(folder) / f"{int(image_index):04d}_{int(box_index):02d}.mat"
    sio = _scipy_io(target)
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
    source = _folder(folder, "DND submission")
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
            f"({'; '.join(missing[:_SHOWN])}{' ...' if len(missing) > _SHOWN else ''}); "
            "denoise and write those boxes first"
        )
    sio = _scipy_io(source)
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
