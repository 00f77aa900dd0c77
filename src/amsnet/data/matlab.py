"""What the SIDD and DND modules share: MATLAB file libraries, benchmark file lookup, v7.3 writing.

* Libraries: scipy (MATLAB v5 files) and h5py (MATLAB v7.3 files, which are HDF5) are optional
  dependencies (``pip install amsnet[mat]``), imported when a file first needs them
  (:func:`import_scipy_io`, :func:`import_h5py`); a missing one raises :class:`DataError`
  naming the file.
* Lookup: copies of the benchmarks differ in the letter case of their file names, so files are
  found without regard to case (:func:`find_entry`, :func:`require_file`), in a folder that
  must exist (:func:`existing_folder`). Error messages list what was found (:func:`listing`).
* v7.3 writing, the way MATLAB's ``save(..., '-v7.3')`` lays a file out: an HDF5 file with a
  512-byte user block that starts with MATLAB's text header (:func:`mat73_file`), a
  ``MATLAB_class`` attribute on every variable (:func:`set_matlab_class`), every array stored
  transposed (MATLAB is column-major), and structs of strings and numbers
  (:func:`write_struct`, :func:`write_double`).
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np

from amsnet.errors import DataError

PathLike = str | Path

SHOWN = 10
"""How many names an error message lists before "... and N more"."""


def import_scipy_io(file: Path) -> ModuleType:
    """``scipy.io``, or a :class:`DataError` naming ``file`` when scipy is not installed."""
    try:
        import scipy.io
    except ImportError as error:  # pragma: no cover - scipy is installed in every test setup
        raise DataError(
            f"reading or writing {file} needs scipy; install it with pip install 'amsnet[mat]'"
        ) from error
    return scipy.io


def import_h5py(file: Path) -> ModuleType:
    """``h5py``, or a :class:`DataError` naming ``file`` when h5py is not installed."""
    try:
        import h5py
    except ImportError as error:  # pragma: no cover - h5py is installed in every test setup
        raise DataError(
            f"reading or writing {file} (MATLAB v7.3) needs h5py; "
            "install it with pip install 'amsnet[mat]'"
        ) from error
    return h5py


def listing(names: Sequence[str]) -> str:
    """The first :data:`SHOWN` names joined by commas, then how many more; ``"nothing"``.

    Example:
        >>> listing(["a", "b"]), listing([])
        ('a, b', 'nothing')
    """
    shown = ", ".join(names[:SHOWN])
    if len(names) > SHOWN:
        shown += f" ... and {len(names) - SHOWN} more"
    return shown or "nothing"


def existing_folder(root: PathLike, what: str) -> Path:
    """``root`` as a path, or a :class:`DataError` when it is not a folder.

    Args:
        root: the folder.
        what: what it holds, for the message (e.g. ``"SIDD validation"``).
    """
    folder = Path(root)
    if not folder.is_dir():
        raise DataError(f"{what} folder {folder} does not exist or is not a folder; check the path")
    return folder


def find_entry(folder: Path, name: str, *, directory: bool = False) -> Path | None:
    """``folder / name``, matching the name without regard to case (copies differ in case).

    Args:
        folder: where to look (not its sub-folders).
        name: the file or folder name.
        directory: look for a folder instead of a file.

    Returns:
        The exact name when it exists, else the one entry whose name differs in case only, or
        ``None``.

    Raises:
        DataError: several entries differ from ``name`` in case only.
    """
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
            f"({listing([m.name for m in matches])}); keep one"
        )
    return matches[0] if matches else None


def require_file(folder: Path, name: str, what: str) -> Path:
    """Like :func:`find_entry` for a file, with a :class:`DataError` when it is missing.

    The message lists the ``.mat`` files that are in ``folder``.
    """
    found = find_entry(folder, name)
    if found is None:
        present = sorted(entry.name for entry in folder.iterdir() if entry.suffix.lower() == ".mat")
        raise DataError(
            f"{what} file {name} is not in {folder} (found .mat files: {listing(present)}); "
            "download it from the benchmark's website or pass the folder that holds it"
        )
    return found


@contextmanager
def mat73_file(path: Path, *, named: Path) -> Iterator[Any]:
    """An ``h5py.File`` open for writing at ``path``, made a MATLAB v7.3 file when it closes.

    Args:
        path: the file to write (usually the temporary file of an atomic write).
        named: the file's final name, for the message when h5py is missing.

    Yields:
        The open file; every variable written into it needs :func:`set_matlab_class`.
    """
    h5py = import_h5py(named)
    # MATLAB's header lives in the HDF5 user block, which must be 512 bytes at least.
    with h5py.File(path, "w", userblock_size=512) as file:
        yield file
    write_mat73_header(path)


def write_mat73_header(file: Path) -> None:
    """Write MATLAB's 128-byte text header at the start of the HDF5 user block of ``file``."""
    stamp = time.strftime("%a %b %d %H:%M:%S %Y", time.gmtime())
    text = f"MATLAB 7.3 MAT-file, Platform: GLNXA64, Created on: {stamp} HDF5 schema 1.00 ."
    header = text.encode("ascii").ljust(116, b" ") + bytes(8) + b"\x00\x02" + b"IM"
    with open(file, "r+b") as handle:
        handle.write(header)


def set_matlab_class(node: Any, name: str) -> None:
    """Tag an HDF5 dataset or group with its MATLAB class (``"uint8"``, ``"cell"`` ...)."""
    # MATLAB reads the class of every v7.3 variable from this fixed-length ASCII attribute.
    node.attrs["MATLAB_class"] = np.bytes_(name)


def write_double(group: Any, name: str, value: float) -> Any:
    """A MATLAB 1 x 1 double ``name`` in ``group``; returns the dataset."""
    dataset = group.create_dataset(name, data=np.full((1, 1), value))
    set_matlab_class(dataset, "double")
    return dataset


def write_struct(group: Any, name: str, fields: Mapping[str, str | float]) -> Any:
    """A MATLAB 1 x 1 struct ``name`` in ``group`` of char-array and double fields.

    Args:
        group: the open file or a group of it.
        name: the variable name.
        fields: field name -> text (a 1 x N char array) or number (a 1 x 1 double); the names
            must be valid MATLAB field names (ASCII).

    Returns:
        The struct's HDF5 group.
    """
    h5py = import_h5py(Path(group.file.filename))
    struct = group.create_group(name)
    set_matlab_class(struct, "struct")
    names = np.empty(len(fields), dtype=object)
    for number, (key, value) in enumerate(fields.items()):
        names[number] = np.frombuffer(key.encode("ascii"), dtype="S1")
        if isinstance(value, str):
            # A 1 x N MATLAB char array: UTF-16 code units, stored (N, 1).
            codes = np.frombuffer(value.encode("utf-16-le"), dtype="<u2").reshape(-1, 1)
            field = struct.create_dataset(key, data=codes)
            set_matlab_class(field, "char")
            field.attrs["MATLAB_int_decode"] = np.int32(2)
        else:
            write_double(struct, key, value)
    struct.attrs.create("MATLAB_fields", names, dtype=h5py.vlen_dtype(np.dtype("S1")))
    return struct
