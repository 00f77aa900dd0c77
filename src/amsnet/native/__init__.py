"""Small C kernels for what PyTorch has no fast CPU kernel for, compiled on first use.

One kernel today, with its backward and a bfloat16 variant: the layer norm over the few
channels of one pixel that NAFNet runs at every block (``channel_norm.c``;
:func:`amsnet.ops.channel_norm.channel_layer_norm` uses it at inference and in training: a
student training step 1.10x faster; the bfloat16 variant, for inference under CPU bfloat16
autocast, reads and writes bfloat16 for any width up to :data:`BF16_MAX_CHANNELS`).
On 2 cores PyTorch's layer norm spends 8-12 ms on a ``(2, 8, 512, 512)`` feature map, bound by
per-row overhead; this kernel takes about 2 ms, and the small NAFNet runs about 1.3x faster
(docs/precision.md).

How it is built: the first call compiles ``channel_norm.c`` with the C compiler (``$CC``, else
``cc``, ``gcc`` or ``clang``) as ``-O3 -march=native -fopenmp`` into a shared library in
``$AMSNET_CACHE_DIR/native`` (default ``~/.cache/amsnet/native``), about half a second, once per
machine: the file name is a hash of the source, the compiler, its flags and this processor, so
a changed source or another CPU builds anew, and a copy compiled for another processor is never
loaded. The file is written atomically (compiled beside its final name, then renamed). Before
first use the library is checked against a plain-Python layer norm; a library that disagrees is
not used.

Nothing here is required: with no compiler, no OpenMP, Windows, a failed build or check, or
``AMSNET_NATIVE=0`` in the environment, :func:`library` returns ``None`` and the callers use
PyTorch's kernels, with the same results to float32 rounding. :func:`status` says which case
holds (``amsnet bench speed`` prints it).

The library's threads are those of the OpenMP runtime PyTorch loaded (``libgomp.so.1`` is
shared by its soname), as many as ``torch.get_num_threads()``, which the caller passes.
"""

from __future__ import annotations

import ctypes
import hashlib
import logging
import math
import os
import platform
import random
import shlex
import shutil
import struct
import subprocess
import sys
import tempfile
import threading
from dataclasses import dataclass
from pathlib import Path

__all__ = [
    "BF16_MAX_CHANNELS",
    "CACHE_VARIABLE",
    "DISABLE_VARIABLE",
    "NORM_CHANNELS",
    "NativeStatus",
    "library",
    "reset",
    "status",
]

log = logging.getLogger(__name__)

#: Set to ``0`` (or ``false``, ``no``, ``off``) to never build or load the C kernels.
DISABLE_VARIABLE = "AMSNET_NATIVE"
#: The folder the compiled library is kept in (``native/`` below it); default ``~/.cache/amsnet``.
CACHE_VARIABLE = "AMSNET_CACHE_DIR"
#: Channel counts ``channel_norm.c`` has a kernel for. Measured on 2 cores against
#: ``F.layer_norm``: 4 channels 16.0 to 1.4 ms, 8: 12.0 to 2.5, 16: 3.1 to 1.5, 32: 0.9 to
#: 0.6; at 64 channels PyTorch's kernel is faster (0.29 against 0.41 ms), so none is compiled.
NORM_CHANNELS = (4, 8, 16, 32)
#: The widest row the bfloat16 layer norm takes (``BF16_MAX_CHANNELS`` in ``channel_norm.c``).
BF16_MAX_CHANNELS = 4096

_SOURCE = Path(__file__).with_name("channel_norm.c")
_FLAGS = ("-O3", "-march=native", "-fopenmp", "-fPIC", "-shared", "-std=c99")
_COMPILE_SECONDS = 120


@dataclass(frozen=True)
class NativeStatus:
    """Whether the C kernels are in use, and why (or why not).

    Attributes:
        available: the library is loaded and passed its check.
        reason: one line for a person (``"built ..."``, ``"no C compiler found ..."``).
        path: the library file, when there is one.
    """

    available: bool
    reason: str
    path: Path | None = None


_lock = threading.Lock()
_loaded: tuple[ctypes.CDLL | None, NativeStatus] | None = None


def library() -> ctypes.CDLL | None:
    """The loaded kernels, building them on the first call; ``None`` when they cannot be used
    (see :func:`status`). Safe to call from several threads."""
    return _load()[0]


def status() -> NativeStatus:
    """Why :func:`library` returns what it does (builds on the first call, like it)."""
    return _load()[1]


def reset() -> None:
    """Forget what was loaded, so that the next call looks again (the environment, the
    compiler, the cache). The library file stays where it is."""
    global _loaded
    with _lock:
        _loaded = None


def _load() -> tuple[ctypes.CDLL | None, NativeStatus]:
    global _loaded
    with _lock:
        if _loaded is None:
            _loaded = _build_and_load()
            level = logging.INFO if _loaded[0] is not None else logging.DEBUG
            log.log(level, "amsnet native kernels: %s", _loaded[1].reason)
        return _loaded


def _build_and_load() -> tuple[ctypes.CDLL | None, NativeStatus]:
    if os.environ.get(DISABLE_VARIABLE, "").strip().lower() in {"0", "false", "no", "off"}:
        return None, NativeStatus(False, f"disabled by {DISABLE_VARIABLE}=0")
    if sys.platform == "win32":
        return None, NativeStatus(False, "not built on Windows (PyTorch's kernels are used)")
    compiler = _compiler()
    if compiler is None:
        return None, NativeStatus(False, "no C compiler found (set CC to one); PyTorch's used")
    version = _compiler_version(compiler)
    if version is None:
        return None, NativeStatus(False, f"the C compiler {shlex.join(compiler)} does not run")
    source = _SOURCE.read_bytes()
    key = hashlib.sha256(
        b"\0".join(
            [
                source,
                shlex.join(compiler).encode(),
                version.encode(),
                " ".join(_FLAGS).encode(),
                platform.machine().encode(),
                _processor_identity().encode(),
            ]
        )
    ).hexdigest()[:20]
    path = _cache_folder() / f"amsnet-native-{key}.so"
    built_now = not path.is_file()
    if built_now:
        failure = _compile(compiler, path)
        if failure is not None:
            return None, NativeStatus(False, failure)
    try:
        lib = ctypes.CDLL(str(path))
        _declare(lib)
    except (OSError, AttributeError) as error:
        return None, NativeStatus(False, f"{path} could not be loaded ({error})", path)
    mismatch = _self_check(lib)
    if mismatch is not None:
        log.warning("amsnet native kernels not used: %s (%s)", mismatch, path)
        return None, NativeStatus(False, f"{path} failed its check: {mismatch}", path)
    how = "built" if built_now else "loaded"
    return lib, NativeStatus(True, f"{how} {path} with {shlex.join(compiler)}", path)


def _compiler() -> list[str] | None:
    named = os.environ.get("CC", "").strip()
    if named:
        command = shlex.split(named)
        return command if shutil.which(command[0]) else None
    for candidate in ("cc", "gcc", "clang"):
        found = shutil.which(candidate)
        if found:
            return [found]
    return None


def _compiler_version(compiler: list[str]) -> str | None:
    try:
        done = subprocess.run(
            [*compiler, "--version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if done.returncode != 0:
        return None
    return done.stdout.strip().splitlines()[0] if done.stdout.strip() else "unknown"


def _processor_identity() -> str:
    """What ``-march=native`` depends on: the model and the instruction-set flags."""
    try:
        text = Path("/proc/cpuinfo").read_text(errors="replace")
    except OSError:
        return platform.processor()
    wanted = ("model name", "flags", "Features", "CPU part")
    lines = {}
    for line in text.splitlines():
        name, _, value = line.partition(":")
        name = name.strip()
        if name in wanted and name not in lines:
            lines[name] = value.strip()
    return "|".join(f"{name}={lines[name]}" for name in sorted(lines))


def _cache_folder() -> Path:
    root = os.environ.get(CACHE_VARIABLE)
    if root:
        base = Path(root)
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "amsnet"
    return base / "native"


def _compile(compiler: list[str], path: Path) -> str | None:
    """Compile into ``path`` atomically; the reason on failure, ``None`` on success."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        handle, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".so")
    except OSError as error:
        return f"cannot write the compiled kernels to {path.parent} ({error}); set {CACHE_VARIABLE}"
    os.close(handle)
    partial = Path(name)
    command = [*compiler, *_FLAGS, "-o", str(partial), str(_SOURCE), "-lm"]
    try:
        done = subprocess.run(
            command, capture_output=True, text=True, timeout=_COMPILE_SECONDS, check=False
        )
        if done.returncode != 0:
            last = (done.stderr.strip().splitlines() or ["no message"])[-1]
            return f"compiling {_SOURCE.name} failed ({shlex.join(command[:1])}: {last})"
        os.replace(partial, path)
    except subprocess.TimeoutExpired:
        return f"compiling {_SOURCE.name} took over {_COMPILE_SECONDS} s; gave up"
    except OSError as error:
        return f"compiling {_SOURCE.name} failed ({error})"
    finally:
        partial.unlink(missing_ok=True)
    return None


# The forward kernels' first arguments: x (rows x channels, contiguous; float32, or bfloat16 for
# the bfloat16 kernel), y (the same shape and dtype, written), rows, channels, weight and bias
# (channels float32 each), eps.
_FORWARD_ARGUMENTS = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int64, ctypes.c_int64]
_FORWARD_ARGUMENTS += [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_float]


def _declare(lib: ctypes.CDLL) -> None:
    lib.amsnet_channel_norm.argtypes = [
        *_FORWARD_ARGUMENTS,
        ctypes.c_void_p,  # mean: rows float32, written, or NULL
        ctypes.c_void_p,  # rstd: rows float32, written, or NULL
        ctypes.c_int,  # threads
    ]
    lib.amsnet_channel_norm.restype = ctypes.c_int
    lib.amsnet_channel_norm_backward.argtypes = [
        ctypes.c_void_p,  # x: rows x channels float32, contiguous
        ctypes.c_void_p,  # grad_y: the same shape
        ctypes.c_int64,  # rows
        ctypes.c_int64,  # channels
        ctypes.c_void_p,  # weight: channels
        ctypes.c_void_p,  # mean: rows, from the forward
        ctypes.c_void_p,  # rstd: rows, from the forward
        ctypes.c_void_p,  # grad_x: rows x channels, written
        ctypes.c_void_p,  # grad_weight: channels, written
        ctypes.c_void_p,  # grad_bias: channels, written
        ctypes.c_int,  # threads
    ]
    lib.amsnet_channel_norm_backward.restype = ctypes.c_int
    lib.amsnet_channel_norm_bf16.argtypes = [*_FORWARD_ARGUMENTS, ctypes.c_int, ctypes.c_int]
    lib.amsnet_channel_norm_bf16.restype = ctypes.c_int
    lib.amsnet_channel_norm_supports.argtypes = [ctypes.c_int64]
    lib.amsnet_channel_norm_supports.restype = ctypes.c_int


def _self_check(lib: ctypes.CDLL) -> str | None:
    """Compare the kernel with a plain-Python layer norm, for every channel count it has, on
    a number of rows that exercises both the blocked loop and the remainder; ``None`` when
    they agree."""
    values = random.Random(0)
    for channels in NORM_CHANNELS:
        if not lib.amsnet_channel_norm_supports(channels):
            return f"no kernel for {channels} channels"
        rows = 16 * 2 + 5
        x = [values.uniform(-3, 3) for _ in range(rows * channels)]
        weight = [values.uniform(0.5, 1.5) for _ in range(channels)]
        bias = [values.uniform(-1, 1) for _ in range(channels)]
        floats = ctypes.c_float * (rows * channels)
        x_buffer, y_buffer = floats(*x), floats()
        w_buffer = (ctypes.c_float * channels)(*weight)
        b_buffer = (ctypes.c_float * channels)(*bias)
        eps = 1e-6
        code = lib.amsnet_channel_norm(
            ctypes.addressof(x_buffer),
            ctypes.addressof(y_buffer),
            rows,
            channels,
            ctypes.addressof(w_buffer),
            ctypes.addressof(b_buffer),
            eps,
            None,
            None,
            2,
        )
        if code != 0:
            return f"returned {code} for {channels} channels"
        statistics = []
        for row in range(rows):
            part = [float(v) for v in x_buffer[row * channels : (row + 1) * channels]]
            mean = sum(part) / channels
            rstd = 1 / math.sqrt(sum((v - mean) ** 2 for v in part) / channels + eps)
            statistics.append((part, mean, rstd))
            for c, value in enumerate(part):
                expected = (value - mean) * rstd * weight[c] + bias[c]
                got = y_buffer[row * channels + c]
                if not abs(got - expected) <= 1e-4 * (1 + abs(expected)):
                    return f"{channels} channels, row {row}: {got} instead of {expected}"
        mismatch = _check_backward(lib, channels, (x_buffer, w_buffer, b_buffer), eps, statistics)
        if mismatch is not None:
            return mismatch
    # The bfloat16 kernel: its blocked channel counts and the general row loop (3, 40).
    # Both forms: centred with a bias, and Restormer's "BiasFree" (no bias, mean kept).
    for channels in (*NORM_CHANNELS, 3, 40):
        for centre in (True, False):
            mismatch = _check_bf16(lib, channels, centre)
            if mismatch is not None:
                return mismatch
    return None


def _check_bf16(lib: ctypes.CDLL, channels: int, centre: bool) -> str | None:
    """The bfloat16 layer norm against plain Python, on inputs that bfloat16 holds exactly
    (multiples of 1/8 below 4), so that only the output's rounding (8 significant bits)
    separates the two; ``centre`` False checks the "BiasFree" form (no bias, the mean left
    in the output)."""
    values = random.Random(100 + channels)
    rows = 16 * 2 + 5
    x = [values.randint(-31, 31) / 8 for _ in range(rows * channels)]
    weight = [values.uniform(0.5, 1.5) for _ in range(channels)]
    bias = [values.uniform(-1, 1) if centre else 0.0 for _ in range(channels)]
    halves = ctypes.c_uint16 * (rows * channels)
    x_buffer, y_buffer = halves(*(_bf16_bits(v) for v in x)), halves()
    w_buffer = (ctypes.c_float * channels)(*weight)
    b_buffer = (ctypes.c_float * channels)(*bias)
    eps = 1e-6
    code = lib.amsnet_channel_norm_bf16(
        *map(ctypes.addressof, (x_buffer, y_buffer)),
        rows,
        channels,
        ctypes.addressof(w_buffer),
        ctypes.addressof(b_buffer) if centre else None,
        eps,
        int(centre),
        2,
    )
    if code != 0:
        return f"the bfloat16 kernel returned {code} for {channels} channels"
    for row in range(rows):
        part = x[row * channels : (row + 1) * channels]
        mean = sum(part) / channels
        rstd = 1 / math.sqrt(sum((v - mean) ** 2 for v in part) / channels + eps)
        shift = mean if centre else 0.0
        for c, value in enumerate(part):
            expected = (value - shift) * rstd * weight[c] + bias[c]
            got = struct.unpack("<f", struct.pack("<I", y_buffer[row * channels + c] << 16))[0]
            if not abs(got - expected) <= 2**-7 * (1 + abs(expected)):
                return f"bfloat16, {channels} channels, row {row}: {got} instead of {expected}"
    return None


def _bf16_bits(value: float) -> int:
    """The bfloat16 bit pattern of a float that bfloat16 holds exactly (its upper 16 bits)."""
    return struct.unpack("<I", struct.pack("<f", value))[0] >> 16


def _check_backward(
    lib: ctypes.CDLL,
    channels: int,
    inputs: tuple[ctypes.Array, ctypes.Array, ctypes.Array],
    eps: float,
    statistics: list[tuple[list[float], float, float]],
) -> str | None:
    """The statistics the forward saves and the gradients of the backward, against the
    formulas in plain Python (for the loss sum(y * g) with a fixed g). ``inputs`` are the
    forward check's x, weight and bias buffers, ``statistics`` its reference rows, means and
    reciprocal standard deviations."""
    x_buffer, w_buffer, b_buffer = inputs
    rows = len(statistics)
    weight = [float(v) for v in w_buffer]
    values = random.Random(channels)
    grad = [values.uniform(-1, 1) for _ in range(rows * channels)]
    floats = ctypes.c_float * (rows * channels)
    y_buffer, g_buffer, gx_buffer = floats(), floats(*grad), floats()
    mean_buffer, rstd_buffer = (ctypes.c_float * rows)(), (ctypes.c_float * rows)()
    gw_buffer, gb_buffer = (ctypes.c_float * channels)(), (ctypes.c_float * channels)()
    code = lib.amsnet_channel_norm(
        *map(ctypes.addressof, (x_buffer, y_buffer)),
        rows,
        channels,
        *map(ctypes.addressof, (w_buffer, b_buffer)),
        eps,
        *map(ctypes.addressof, (mean_buffer, rstd_buffer)),
        2,
    )
    if code == 0:
        code = lib.amsnet_channel_norm_backward(
            *map(ctypes.addressof, (x_buffer, g_buffer)),
            rows,
            channels,
            *map(ctypes.addressof, (w_buffer, mean_buffer, rstd_buffer, gx_buffer)),
            *map(ctypes.addressof, (gw_buffer, gb_buffer)),
            2,
        )
    if code != 0:
        return f"the backward returned {code} for {channels} channels"
    expected_w, expected_b = [0.0] * channels, [0.0] * channels
    for row, (part, mean, rstd) in enumerate(statistics):
        g = grad[row * channels : (row + 1) * channels]
        if abs(mean_buffer[row] - mean) > 1e-4 or abs(rstd_buffer[row] - rstd) > 1e-4 * rstd:
            return f"{channels} channels, row {row}: wrong saved statistics"
        n = [(v - mean) * rstd for v in part]
        gw = [g[c] * weight[c] for c in range(channels)]
        average_gw = sum(gw) / channels
        average_gwn = sum(a * b for a, b in zip(gw, n, strict=True)) / channels
        for c in range(channels):
            expected = rstd * (gw[c] - average_gw - n[c] * average_gwn)
            got = gx_buffer[row * channels + c]
            if not abs(got - expected) <= 1e-4 * (1 + abs(expected)):
                return f"{channels} channels, row {row}: gradient {got} instead of {expected}"
            expected_w[c] += g[c] * n[c]
            expected_b[c] += g[c]
    for c in range(channels):
        if abs(gw_buffer[c] - expected_w[c]) > 1e-3 * (1 + abs(expected_w[c])):
            return f"{channels} channels: weight gradient {gw_buffer[c]} instead of {expected_w[c]}"
        if abs(gb_buffer[c] - expected_b[c]) > 1e-3 * (1 + abs(expected_b[c])):
            return f"{channels} channels: bias gradient {gb_buffer[c]} instead of {expected_b[c]}"
    return None
