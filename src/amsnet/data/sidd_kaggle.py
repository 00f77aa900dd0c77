"""The SIDD sRGB benchmark as the Kaggle board takes it: ``SubmitSrgb.csv``, written and checked.

The original SIDD server, which took ``SubmitSrgb.mat``
(:func:`amsnet.data.sidd.write_sidd_submission`), has closed; the benchmark now runs as the
Kaggle competitions ``sidd-benchmark-srgb-psnr`` and ``sidd-benchmark-srgb-ssim``
(:data:`KAGGLE_COMPETITIONS`). Their SSIM is not comparable with the old server's
(:mod:`amsnet.data.protocols`).

The file (sources and what could not be confirmed: ``docs/sidd_benchmark.md``):

* a header line ``ID,BLOCK`` (:data:`KAGGLE_HEADER`), then one line per block, no index
  column, ``\\n`` line ends, no quoting (the base64 alphabet holds no comma or quote);
* ``ID``: ``image * 32 + block``, 0-based, rows in increasing order: the image-major order of
  ``BenchmarkNoisyBlocksSrgb`` (40 images x 32 blocks = 1280 rows);
* ``BLOCK``: standard base64 (RFC 4648 alphabet, ``=`` padding) of the block's raw uint8
  bytes in C order of its ``(256, 256, 3)`` array: row by row, pixel by pixel, R, G, B;
  196,608 bytes, 262,144 characters.

:func:`write_kaggle_submission` streams one encoded row at a time into a temporary file,
reads that file back with :func:`check_kaggle_submission` (layout, and every block equal to
the one given) and only then moves it onto its name. The reader also accepts ``\\r\\n`` line
ends and double-quoted fields, as a CSV written on Windows or by another tool has them.

Example:
    >>> import numpy as np, pathlib, tempfile
    >>> blocks = np.zeros((1, 2, 4, 4, 3), dtype=np.uint8)
    >>> path = pathlib.Path(tempfile.mkdtemp()) / "SubmitSrgb.csv"
    >>> _ = write_kaggle_submission(path, blocks, strict=False)
    >>> path.read_text()[:9]
    'ID,BLOCK\\n'
    >>> read_kaggle_submission(path, strict=False, block_shape=(4, 4, 3)).shape
    (2, 4, 4, 3)
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from amsnet.atomic import atomic_path
from amsnet.data.matlab import PathLike
from amsnet.data.sidd import check_submission_blocks, SIDD_BLOCKS_SHAPE
from amsnet.errors import ConfigError, DataError

KAGGLE_HEADER = ("ID", "BLOCK")
"""The CSV's columns, in order."""

KAGGLE_COMPETITIONS = ("sidd-benchmark-srgb-psnr", "sidd-benchmark-srgb-ssim")
"""The Kaggle competitions (one leaderboard per metric) that take the file."""

KAGGLE_BLOCKS = SIDD_BLOCKS_SHAPE[0] * SIDD_BLOCKS_SHAPE[1]
"""Rows of a complete submission: 40 images x 32 blocks."""

BLOCK_SHAPE = SIDD_BLOCKS_SHAPE[2:]
"""``(256, 256, 3)``: height, width, RGB of every published block."""

_SHOWN = 40
"""How many characters of an unexpected field an error message shows."""


def encode_block(block: np.ndarray) -> str:
    """The ``BLOCK`` field of one block: base64 of its uint8 bytes in C order.

    Args:
        block: uint8 ``(H, W, 3)``, any memory layout (``tobytes`` always gives C order).

    Example:
        >>> encode_block(np.array([[[0, 1, 255]]], dtype=np.uint8))
        'AAH/'
    """
    return base64.b64encode(block.tobytes(order="C")).decode("ascii")


def decode_block(text: str, shape: tuple[int, ...]) -> np.ndarray:
    """The uint8 ``shape`` array a ``BLOCK`` field holds.

    Raises:
        DataError: not base64, or another number of bytes than ``shape`` needs.
    """
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError) as error:
        raise DataError(f"BLOCK is not base64 ({error}): {_shown(text)}") from error
    expected = int(np.prod(shape))
    if len(raw) != expected:
        raise DataError(
            f"BLOCK decodes to {len(raw)} bytes, a uint8 block of {shape} has {expected}"
        )
    return np.frombuffer(raw, dtype=np.uint8).reshape(shape)


def write_kaggle_submission(
    path: PathLike, blocks: Any, *, strict: bool = True, verify: bool = True
) -> Path:
    """Write ``SubmitSrgb.csv`` for the Kaggle SIDD board, atomically, and check it.

    Args:
        path: the file to write, normally ``.../SubmitSrgb.csv``. Callers refuse an existing
            file first (:func:`amsnet.atomic.check_new_output`); this function replaces it.
        blocks: uint8 ``(40, 32, 256, 256, 3)`` in the order of ``BenchmarkNoisyBlocksSrgb``,
            or an object array ``(40, 32)`` of uint8 ``(256, 256, 3)`` arrays. Not copied.
        strict: require the published 40 x 32 blocks of 256 x 256 x 3.
        verify: read the written file back (:func:`check_kaggle_submission`, every block
            compared) before it takes its name. For the 1280 blocks, measured on 2 CPU cores:
            writing 0.4 s, reading back 1.2 s; the denoising takes minutes.

    Returns:
        The path written.

    Raises:
        ShapeError: wrong block count, shape or dtype (the message says which block).
        DataError: the file read back differs from ``blocks`` (then nothing is written).
    """
    cells = check_submission_blocks(blocks, strict)
    if cells.size == 0:
        raise ConfigError("there are no blocks to write; give at least one")
    target = Path(path)
    with atomic_path(target) as tmp:
        with open(tmp, "w", newline="", encoding="ascii") as handle:
            handle.write(",".join(KAGGLE_HEADER) + "\n")
            for index, block in enumerate(cells.reshape(-1)):
                # One row at a time: the 1280 encoded blocks (335 MB) are never all in memory.
                handle.write(f"{index},{encode_block(block)}\n")
        if verify:
            try:
                check_kaggle_submission(
                    tmp, strict=strict, block_shape=cells[0, 0].shape, expected=cells
                )
            except DataError as error:
                raise DataError(
                    f"{target} was not written: the file read back does not hold the blocks "
                    f"given ({error}); please report this"
                ) from error
    return target


def iter_kaggle_submission(
    path: PathLike, *, block_shape: tuple[int, ...] = BLOCK_SHAPE
) -> Iterator[tuple[int, np.ndarray]]:
    """The ``(ID, block)`` rows of a Kaggle CSV, one at a time, checking the layout.

    Args:
        path: the CSV.
        block_shape: the shape every block must decode to.

    Yields:
        ``(index, block)``: the row's ID (0, 1, 2 ... in order) and its uint8 block.

    Raises:
        DataError: naming the file and line: a missing file, a header other than
            ``ID,BLOCK``, a row without exactly two fields, an ID out of order, a block that
            is not base64 or of another size, or a blank line between rows.
    """
    file = Path(path)
    if not file.is_file():
        raise DataError(f"Kaggle submission {file} does not exist or is not a file")
    expected_header = ",".join(KAGGLE_HEADER)
    index = 0
    blank_at: int | None = None
    try:
        with open(file, encoding="utf-8", newline="") as handle:
            header = handle.readline()
            if not header:
                raise DataError(f"{file} is empty; expected the header {expected_header}")
            if _fields(header) != list(KAGGLE_HEADER):
                raise DataError(
                    f"{file} line 1 is {_shown(_strip(header))}, the Kaggle board's header is "
                    f"{expected_header} (ID, then the base64 BLOCK, nothing else)"
                )
            for number, line in enumerate(handle, start=2):
                if not _strip(line):
                    blank_at = blank_at or number
                    continue
                where = f"{file} line {number}"
                if blank_at is not None:
                    raise DataError(f"{file} line {blank_at} is blank, yet rows follow it")
                fields = _fields(line)
                if len(fields) != 2:
                    raise DataError(
                        f"{where} has {len(fields)} fields, expected 2 (ID,BLOCK): "
                        f"{_shown(_strip(line))}"
                    )
                if fields[0] != str(index):
                    raise DataError(
                        f"{where}: ID {_shown(fields[0])}, expected {index}; the IDs run "
                        "0, 1, 2 ... in the image-major order of BenchmarkNoisyBlocksSrgb "
                        "(ID = image x 32 + block)"
                    )
                try:
                    block = decode_block(fields[1], tuple(block_shape))
                except DataError as error:
                    raise DataError(f"{where} (ID {index}): {error}") from error
                yield index, block
                index += 1
    except UnicodeDecodeError as error:
        raise DataError(f"{file} is not a text (UTF-8) CSV ({error})") from error


def check_kaggle_submission(
    path: PathLike,
    *,
    strict: bool = True,
    block_shape: tuple[int, ...] = BLOCK_SHAPE,
    expected: Any = None,
) -> int:
    """Check a Kaggle CSV's layout (and, optionally, its blocks) without holding it in memory.

    Args:
        path: the CSV.
        strict: require the published 1280 rows of 256 x 256 x 3 blocks.
        block_shape: the shape every block must decode to (with ``strict``, 256 x 256 x 3).
        expected: blocks as :func:`write_kaggle_submission` takes them; every row must then
            decode to exactly the block of its ID.

    Returns:
        The number of rows.

    Raises:
        DataError: a layout error (see :func:`iter_kaggle_submission`), another number of
            rows than 1280 with ``strict``, or a block that differs from ``expected``.
        ConfigError: ``strict`` with another ``block_shape``.
    """
    cells = None if expected is None else check_submission_blocks(expected, False)
    per_image = 1 if cells is None else cells.shape[1]
    flat = None if cells is None else cells.reshape(-1)
    file = Path(path)
    count = 0
    for index, block in _checked_rows(file, strict, block_shape):
        if flat is not None:
            if index >= flat.size:
                raise DataError(f"{file} holds more rows than the {flat.size} blocks given")
            if not np.array_equal(block, flat[index]):
                image, number = divmod(index, per_image)
                raise DataError(
                    f"{file}: the block of ID {index} (image {image}, block {number}) differs "
                    "from the one given"
                )
        count = index + 1
    if flat is not None and count != flat.size:
        raise DataError(f"{file} holds {count} rows, {flat.size} blocks were given")
    return count


def read_kaggle_submission(
    path: PathLike, *, strict: bool = True, block_shape: tuple[int, ...] = BLOCK_SHAPE
) -> np.ndarray:
    """Every block of a Kaggle CSV, checked as :func:`check_kaggle_submission` does.

    Returns:
        uint8 ``(rows, H, W, 3)`` in ID order; ``reshape(40, 32, 256, 256, 3)`` gives the
        layout of ``BenchmarkNoisyBlocksSrgb``.
    """
    return np.stack([block for _, block in _checked_rows(Path(path), strict, block_shape)])


def _checked_rows(
    file: Path, strict: bool, block_shape: tuple[int, ...]
) -> Iterator[tuple[int, np.ndarray]]:
    """:func:`iter_kaggle_submission`, plus the row count: at least one, 1280 with ``strict``."""
    shape = tuple(int(size) for size in block_shape)
    if strict and shape != BLOCK_SHAPE:
        raise ConfigError(
            f"the Kaggle board's blocks are {BLOCK_SHAPE}, not {shape}; pass --no-strict "
            "(strict=False in Python) for other blocks"
        )
    count = 0
    for index, block in iter_kaggle_submission(file, block_shape=shape):
        if strict and index >= KAGGLE_BLOCKS:
            raise DataError(_count_message(file, f"more than {KAGGLE_BLOCKS}"))
        yield index, block
        count = index + 1
    if count == 0:
        raise DataError(f"{file} holds the header but no rows; expected one row per block")
    if strict and count != KAGGLE_BLOCKS:
        raise DataError(_count_message(file, str(count)))


def _count_message(file: Path, found: str) -> str:
    return (
        f"{file} holds {found} rows, the Kaggle board takes {KAGGLE_BLOCKS} "
        f"({SIDD_BLOCKS_SHAPE[0]} images x {SIDD_BLOCKS_SHAPE[1]} blocks); pass --no-strict "
        "(strict=False in Python) for another number"
    )


def _strip(line: str) -> str:
    """``line`` without its line end (``\\n`` or ``\\r\\n``)."""
    return line.rstrip("\n").removesuffix("\r")


def _fields(line: str) -> list[str]:
    """The comma-separated fields of a line, each without surrounding double quotes."""
    fields = _strip(line).split(",")
    return [f[1:-1] if len(f) >= 2 and f[0] == f[-1] == '"' else f for f in fields]


def _shown(text: str) -> str:
    """``text`` quoted, cut to :data:`_SHOWN` characters."""
    cut = text if len(text) <= _SHOWN else text[:_SHOWN] + "..."
    return repr(cut)
