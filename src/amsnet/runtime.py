"""Where and how computations run: device choice and CPU allocator tuning."""

from __future__ import annotations

import ctypes
import ctypes.util
import logging
import sys
from collections.abc import Callable

import torch

from amsnet.errors import ConfigError
from amsnet.precision import choose_precision, set_precision

log = logging.getLogger(__name__)

DEVICE_CHOICES = ("auto", "cpu", "cuda", "mps")


def resolve_device(name: str = "auto") -> torch.device:
    """Turn ``auto``/``cpu``/``cuda``/``cuda:N``/``mps`` into an available :class:`torch.device`.

    ``auto`` prefers CUDA, then Apple's MPS, then the CPU.

    Raises:
        ConfigError: an unknown name or a device that is not available here.
    """
    key = name.lower()
    if key == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        device = torch.device(key)
    except RuntimeError:
        raise ConfigError(
            f"unknown device {name!r}; use one of {DEVICE_CHOICES} or cuda:N"
        ) from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {name!r} asked for, but CUDA is not available; use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {name!r} asked for, but only {torch.cuda.device_count()} GPU(s) exist"
            )
    elif device.type == "mps" and not torch.backends.mps.is_available():
        raise ConfigError(f"device {name!r} asked for, but MPS is not available; use --device cpu")
    elif device.type not in ("cpu", "cuda", "mps"):
        raise ConfigError(f"unsupported device {name!r}; use one of {DEVICE_CHOICES}")
    return device


def tune_cpu_allocator() -> bool:
    """Stop glibc from returning large activation buffers to the OS after every operation.

    glibc serves big allocations with mmap and unmaps them on free, so every forward pass
    page-faults and zeroes hundreds of megabytes again; raising the mmap and trim thresholds
    made CPU inference 18-43% faster on the project's 2-core machines (see
    ``benchmarks/README.md``), at the cost of a higher resident peak. Safe to call more than
    once; does nothing off glibc.

    Returns:
        True when the thresholds were set.
    """
    mallopt = _glibc_function("mallopt")
    if mallopt is None:
        return False
    m_trim_threshold, m_mmap_threshold = -1, -3  # glibc's mallopt parameter numbers
    limit = 1 << 34  # 16 GiB: larger than any single buffer we allocate
    ok = bool(mallopt(m_mmap_threshold, ctypes.c_int(min(limit, 2**31 - 1))))
    ok = bool(mallopt(m_trim_threshold, ctypes.c_int(min(limit, 2**31 - 1)))) and ok
    log.debug("glibc allocator thresholds raised: %s", ok)
    return ok


def trim_cpu_heap() -> bool:
    """Hand the free memory that glibc's heap keeps back to the OS (``malloc_trim(0)``).

    With :func:`tune_cpu_allocator`'s thresholds, freed activation buffers stay resident; a
    later computation reuses them without growing the resident size, which hides its need
    from a resident-peak measurement (:mod:`amsnet.memory` trims first). Does nothing off glibc.

    Returns:
        True when glibc released some memory.
    """
    malloc_trim = _glibc_function("malloc_trim")
    if malloc_trim is None:
        return False
    return bool(malloc_trim(ctypes.c_size_t(0)))


def _glibc_function(name: str) -> Callable[..., int] | None:
    """The C library's function ``name`` on Linux, or ``None`` (other systems, other libcs)."""
    if not sys.platform.startswith("linux"):
        return None
    library = ctypes.util.find_library("c")
    if library is None:
        return None
    try:
        return getattr(ctypes.CDLL(library), name)
    except (OSError, AttributeError):
        return None


def prepare_for_inference(
    model: torch.nn.Module,
    device: torch.device | str,
    *,
    channels_last: bool | None = None,
    precision: str | None = "auto",
    card: dict | None = None,
) -> torch.nn.Module:
    """Move ``model`` to ``device`` in eval mode, in the memory format that runs fastest there,
    with its backbone's precision chosen (:func:`amsnet.precision.choose_precision`).

    Channels-last weights make oneDNN (CPU) and cuDNN pick their NHWC kernels: measured on the
    project's 2-core CPUs, DnCNN, UNet and DBSNl forward passes ran 1.3-1.4x faster, Restormer
    1.5-2x (``amsnet bench speed --layout`` measures either layout).

    Args:
        model: a method or backbone.
        device: target device.
        channels_last: force the memory format; ``None`` chooses channels-last on CPU and
            CUDA and the default elsewhere.
        precision: ``auto``, ``fp32``, ``bf16`` or ``fp16`` for the backbone; ``None`` keeps
            the model's own (an adapted copy keeps its original's).
        card: the model card of a weights file (its verdict on reduced precision).
    """

    target = torch.device(device)
    if channels_last is None:
        channels_last = target.type in ("cpu", "cuda")
    model = model.to(target)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    if precision is not None:
        set_precision(model, choose_precision(model, precision, target, card=card))
    return model.eval()
