"""SIDD (Abdelhamed, Lin, Brown, CVPR 2018) sRGB files: training listing, blocks, submissions.

* *SIDD Medium sRGB* (training): ``SIDD_Medium_Srgb/Data/<scene>/<id>_NOISY_SRGB_010.PNG``,
  ``<id>_GT_SRGB_010.PNG`` and the same with ``_011``: 160 scene folders, 320 noisy images
  (:func:`sidd_medium_files`).
* *Validation*: ``ValidationNoisyBlocksSrgb.mat`` and ``ValidationGtBlocksSrgb.mat``, MATLAB v5,
  one variable each named like the file, ``(40, 32, 256, 256, 3)`` uint8: 40 images x 32
  blocks (:func:`read_sidd_validation`, which returns the
  :class:`~amsnet.data.sidd_blocks.SiddBlocks` of :mod:`amsnet.data.sidd_blocks`).
* *Benchmark*: ``BenchmarkNoisyBlocksSrgb.mat``, same layout, no ground truth
  (:func:`read_sidd_benchmark`). The submission is ``SubmitSrgb.mat`` holding
  ``DenoisedBlocksSrgb`` (a 40 x 32 cell array of uint8 256 x 256 x 3 blocks), ``TimeMPSrgb``
  (seconds per megapixel, a double) and ``OptionalData`` (a struct of strings: the official kit's
  demo fills ``MethodName``, ``Authors``, ``PaperTitle``, ``Venue`` and ``MachineSpecs``)
  (:func:`write_sidd_submission`), for the original SIDD server, now closed. The benchmark
  now runs as the Kaggle competitions ``sidd-benchmark-srgb-psnr`` and
  ``sidd-benchmark-srgb-ssim``, which take a CSV instead (:mod:`amsnet.data.sidd_kaggle`;
  their SSIM is not comparable with the old server's, see :mod:`amsnet.data.protocols`).

Decisions where the kit is silent:

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
* A ``subset`` of the validation blocks is spread over all images
  (:meth:`~amsnet.data.sidd_blocks.SiddBlocks.spread`).

scipy (v5 files) and h5py (v7.3 files) are optional dependencies (``pip install amsnet[mat]``;
see :mod:`amsnet.data.matlab`).

Example:
    >>> from amsnet.data.sidd import read_sidd_validation  # doctest: +SKIP
    >>> blocks = read_sidd_validation("SIDD/", subset=128)  # doctest: +SKIP
    >>> for index, noisy, clean in blocks:                 # doctest: +SKIP
    ...     image, block = blocks.position(index)          # uint8 (256, 256, 3) views
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal, overload

import numpy as np

from amsnet.atomic import atomic_path
from amsnet.data.matlab import (
    existing_folder,
    find_entry,
    import_h5py,
    import_scipy_io,
    listing,
    mat73_file,
    PathLike,
    require_file,
    set_matlab_class,
    write_double,
    write_struct,
)
from amsnet.data.sidd_blocks import SiddBlocks
from amsnet.errors import ConfigError, DataError, ShapeError

SIDD_BLOCKS_SHAPE = (40, 32, 256, 256, 3)
"""Shape of every published SIDD block file: images, blocks per image, height, width, RGB."""

SIDD_MEDIUM_SCENES = 160
"""Scene folders of SIDD Medium sRGB (two noisy/ground-truth pairs each)."""
SIDD_VALIDATION_NOISY = "ValidationNoisyBlocksSrgb"
SIDD_VALIDATION_CLEAN = "ValidationGtBlocksSrgb"
SIDD_BENCHMARK_NOISY = "BenchmarkNoisyBlocksSrgb"

_MEDIUM_FILE = re.compile(r"^(?:\d+_)?(NOISY|GT)_SRGB_(\d{3})\.png$", re.IGNORECASE)
_MEDIUM_NUMBERS = ("010", "011")
_MATLAB_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,62}$")
_MEGAPIXEL = 1024 * 1024


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
    folder = existing_folder(root, "SIDD Medium")
    data = find_entry(folder, "Data", directory=True) or folder
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
            f"{SIDD_MEDIUM_SCENES}; complete the download, or pass --no-strict (strict=False "
            "in Python) to use a partial copy"
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
        found = listing(sorted(path.name for path in files.values()))
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
                    "--no-strict (strict=False in Python)"
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
# SIDD validation and benchmark files


def _load_sidd_array(file: Path, name: str, strict: bool) -> np.ndarray:
    sio = import_scipy_io(file)
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
            f"{file} holds no variable {name} (found: {listing([v[0] for v in variables])}); "
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
                "pass --no-strict (strict=False in Python) for a file of another size"
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
    folder = existing_folder(root, "SIDD validation")
    noisy_file = require_file(folder, f"{SIDD_VALIDATION_NOISY}.mat", "SIDD validation")
    clean_file = require_file(folder, f"{SIDD_VALIDATION_CLEAN}.mat", "SIDD validation")
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
    folder = existing_folder(root, "SIDD benchmark")
    file = require_file(folder, f"{SIDD_BENCHMARK_NOISY}.mat", "SIDD benchmark")
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


def check_submission_blocks(blocks: Any, strict: bool) -> np.ndarray:
    """Check denoised blocks and return them as an ``(images, blocks)`` object array.

    Shared by both submission formats (``SubmitSrgb.mat`` here, the Kaggle CSV in
    :mod:`amsnet.data.sidd_kaggle`).

    Args:
        blocks: uint8 ``(images, blocks, H, W, 3)``, or an object array ``(images, blocks)``
            of uint8 ``(H, W, 3)`` arrays of one shape.
        strict: require the published 40 x 32 blocks of 256 x 256 x 3.

    Returns:
        The object array, holding views of the caller's arrays (no copy of the 251 MB).

    Raises:
        ShapeError: wrong block count, shape or dtype (the message says which block).
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
            f"{cells.shape[0]} x {cells.shape[1]}; pass --no-strict (strict=False in Python) "
            "for another size"
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
        from amsnet.version import __version__

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
    cells = check_submission_blocks(blocks, strict)
    fields = _optional_data(optional_data)
    target = Path(path)
    with atomic_path(target) as tmp:
        if mat_format == "v5":
            sio = import_scipy_io(target)
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


def _write_mat73_submission(
    tmp: Path,
    target: Path,
    cells: np.ndarray,
    seconds: float,
    fields: Mapping[str, str | float],
    compress: bool,
) -> None:
    gzip = {"compression": "gzip", "compression_opts": 4} if compress else {}
    with mat73_file(tmp, named=target) as file:
        references = file.create_group("#refs#")
        # MATLAB stores arrays column-major, so HDF5 sees every shape reversed: the 40 x 32
        # cell is a (32, 40) dataset and a 256 x 256 x 3 block a (3, 256, 256) one.
        cell = file.create_dataset(
            "DenoisedBlocksSrgb", shape=cells.shape[::-1], dtype=import_h5py(target).ref_dtype
        )
        for (image, block), array in np.ndenumerate(cells):
            stored = references.create_dataset(
                f"b{image:02d}_{block:02d}", data=np.ascontiguousarray(array.T), **gzip
            )
            set_matlab_class(stored, "uint8")
            cell[block, image] = stored.ref
        set_matlab_class(cell, "cell")
        write_double(file, "TimeMPSrgb", seconds)
        write_struct(file, "OptionalData", fields)


def write_sidd_submission_csv(path: PathLike, blocks: np.ndarray, *, strict: bool = True) -> Path:
    """The Kaggle CSV, under its earlier name: see
    :func:`amsnet.data.sidd_kaggle.write_kaggle_submission` (which also checks the file)."""
    from amsnet.data.sidd_kaggle import write_kaggle_submission

    return write_kaggle_submission(path, blocks, strict=strict)
