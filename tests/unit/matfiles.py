"""Writers of MATLAB v7.3 test files, laid out the way MATLAB's ``save(..., '-v7.3')`` does.

A 512-byte user block with MATLAB's header, every array stored transposed, cell arrays as
object references into ``#refs#``, a ``MATLAB_class`` attribute on every variable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import h5py
import numpy as np


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
