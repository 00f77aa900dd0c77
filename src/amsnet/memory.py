"""Peak memory of a block of code: the CUDA allocator's peak, or the process's resident peak.

* CUDA: ``torch.cuda.max_memory_allocated`` after ``reset_peak_memory_stats``, minus what was
  allocated before the block (tensors only: the caching allocator's reserve is not counted).
* Linux CPU: the kernel keeps the process's resident high-water mark (``VmHWM`` in
  ``/proc/self/status``); writing ``5`` to ``/proc/self/clear_refs`` resets it to the current
  resident size, so the block's peak is ``VmHWM`` after it minus ``VmRSS`` before it. Memory
  that glibc kept from earlier work would be reused without growing the resident size and
  hide part of the block's need, so the free heap is handed back to the OS first
  (:func:`amsnet.runtime.trim_cpu_heap`).
* Elsewhere (MPS, other systems): not measured.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import torch

from amsnet.runtime import trim_cpu_heap


@dataclass
class PeakMemory:
    """Filled in when the :func:`peak_memory` block ends.

    Attributes:
        bytes: the block's peak memory above what was in use when it started, in bytes;
            ``None`` where it cannot be measured.
    """

    bytes: int | None = None


@contextmanager
def peak_memory(device: torch.device | str) -> Iterator[PeakMemory]:
    """Measure the peak memory that the block adds on ``device`` (see the module docstring).

    Example:
        >>> with peak_memory("cpu") as peak:
        ...     x = torch.ones(1 << 22)  # 16 MiB
        >>> peak.bytes is None or peak.bytes >= 0
        True
    """
    target = torch.device(device)
    result = PeakMemory()
    if target.type == "cuda":
        torch.cuda.synchronize(target)
        torch.cuda.reset_peak_memory_stats(target)
        before = torch.cuda.memory_allocated(target)
        yield result
        torch.cuda.synchronize(target)
        result.bytes = torch.cuda.max_memory_allocated(target) - before
        return
    if target.type != "cpu" or not sys.platform.startswith("linux"):
        yield result
        return
    trim_cpu_heap()
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        before = status_bytes("VmRSS")
    except OSError:
        # No /proc (a sandbox) or no permission: run the block unmeasured.
        yield result
        return
    yield result
    peak = status_bytes("VmHWM")
    if before is not None and peak is not None:
        result.bytes = max(0, peak - before)


def status_bytes(field: str) -> int | None:
    """A ``kB`` field of ``/proc/self/status`` in bytes, or ``None`` when absent."""
    with open("/proc/self/status") as handle:
        for line in handle:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    return None


def available_memory(device: torch.device | str) -> int | None:
    """Bytes a new allocation can still get: free GPU memory on CUDA, ``MemAvailable`` of
    ``/proc/meminfo`` on a Linux CPU; ``None`` where it is not known."""
    device = torch.device(device)
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free)
    if device.type != "cpu":
        return None
    try:
        with open("/proc/meminfo") as handle:
            for line in handle:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return None
